/*
 * fuzz_format.c — libFuzzer harness of the weights parser: any bytes either parse,
 * and then every tensor copies out within bounds, or are refused with an error code.
 * Built with clang -fsanitize=fuzzer,address (bench/fuzz.sh); seeds come from the
 * unit tests' valid weights, written by the harness itself on the first run.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/rs_core.h"
#include "core/rs_format.h"
#include "core_host.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	RsFormatView view;
	char		err[256];
	uint8_t    *buf;
	int			ok;

	/*
	 * Half the inputs get a correct trailing CRC-32C written in (the first byte's low
	 * bit says which): random bytes almost never pass the checksum, and everything the
	 * parser checks after it (table, dims, layout, finiteness) must be reached too.
	 */
	rs_core_use_postgres();
	if (size < 2)
		return 0;
	buf = malloc(size - 1);
	memcpy(buf, data + 1, size - 1);
	if ((data[0] & 1) && size - 1 >= 8)
	{
		uint32_t	crc = rs_crc32c(buf, size - 1 - 4);

		memcpy(buf + size - 1 - 4, &crc, 4);	/* little-endian, as the writer stores it */
	}
	ok = rs_format_parse(buf, size - 1, &view, err, sizeof(err)) == RS_OK;
	if (!ok)
	{
		free(buf);
		return 0;
	}
	for (int i = 0; i < view.ntensors; i++)
	{
		RsTensorDesc d;
		float	   *dst;

		rs_format_tensor(&view, i, &d);
		if (rs_format_find(&view, d.name, &d) < 0)
			abort();			/* a listed tensor must be found by name */
		dst = malloc(sizeof(float) * (d.numel ? d.numel : 1));
		rs_format_copy(&view, &d, dst);
		free(dst);
	}
	free(buf);
	return 0;
}
