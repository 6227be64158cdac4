/*
 * test_format.c — the v1 weights format: round trip, canonical bytes, and
 * rejection of every corruption before a weight is used.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rs_format.h"
#include "unit.h"

/* A small two-tensor model, written into a fresh malloc'd buffer. */
static uint8_t *
small_model(uint64_t *size, const char *config)
{
	static const float w[6] = {1, -2, 3.5f, 0, 1e-3f, -7};
	static const float b[3] = {0.25f, -0.5f, 2};
	RsTensorDesc d[2] = {{.name = "layer0.w", .ndim = 2, .dims = {2, 3}},
	{.name = "layer0.b", .ndim = 1, .dims = {3}}};
	const float *data[2] = {w, b};
	char		err[256];
	uint8_t    *buf;

	if (rs_format_layout(2, d, strlen(config), size, err, sizeof(err)) != RS_OK)
		return NULL;
	buf = malloc(*size);
	rs_format_write(buf, *size, RS_KIND_MLP, 2, d, data, config, strlen(config));
	return buf;
}

static void
test_round_trip(int *failed)
{
	uint64_t	size;
	uint8_t    *buf = small_model(&size, "{\"layers\": [2, 3]}");
	RsFormatView v;
	RsTensorDesc d;
	float		out[6];
	char		err[256];

	CHECK(buf != NULL);
	CHECK(size % 16 == 4);
	CHECK(rs_format_parse(buf, size, &v, err, sizeof(err)) == RS_OK);
	CHECK(v.kind == RS_KIND_MLP && v.ntensors == 2);
	CHECK(v.config_len == strlen("{\"layers\": [2, 3]}"));
	CHECK(rs_format_find(&v, "layer0.w", &d) == 0);
	CHECK(d.ndim == 2 && d.dims[0] == 2 && d.dims[1] == 3 && d.numel == 6);
	CHECK(d.offset % 16 == 0);
	rs_format_copy(&v, &d, out);
	CHECK(out[2] == 3.5f && out[5] == -7);
	CHECK(rs_format_find(&v, "layer0.b", &d) == 1);
	rs_format_copy(&v, &d, out);
	CHECK(out[0] == 0.25f && out[2] == 2);
	CHECK(rs_format_find(&v, "nope", &d) == -1);
	free(buf);
}

static void
test_deterministic_bytes(int *failed)
{
	uint64_t	s1,
				s2;
	uint8_t    *a = small_model(&s1, "{}");
	uint8_t    *b = small_model(&s2, "{}");

	CHECK(s1 == s2 && memcmp(a, b, s1) == 0);
	free(a);
	free(b);
}

/* Every byte, three flips each, plus every truncation: all rejected. */
static void
test_every_corruption_rejected(int *failed)
{
	uint64_t	size;
	uint8_t    *buf = small_model(&size, "{\"a\": 1}");
	RsFormatView v;
	char		err[256];
	int			accepted = 0;
	static const uint8_t masks[3] = {0x01, 0x80, 0xff};

	for (uint64_t pos = 0; pos < size; pos++)
		for (int m = 0; m < 3; m++)
		{
			buf[pos] ^= masks[m];
			if (rs_format_parse(buf, size, &v, err, sizeof(err)) == RS_OK)
				accepted++;
			buf[pos] ^= masks[m];
		}
	CHECK_MSG(accepted == 0, "%d corrupted variants were accepted", accepted);
	for (uint64_t len = 0; len < size; len++)
		if (rs_format_parse(buf, len, &v, err, sizeof(err)) == RS_OK)
			accepted++;
	CHECK_MSG(accepted == 0, "%d truncations were accepted", accepted);
	CHECK(rs_format_parse(buf, size, &v, err, sizeof(err)) == RS_OK);
	free(buf);
}

/* A NaN with a correct CRC is still refused (the CRC only proves integrity). */
static void
test_nonfinite_rejected(int *failed)
{
	float		w[2] = {1, NAN};
	RsTensorDesc d[1] = {{.name = "w", .ndim = 1, .dims = {2}}};
	const float *data[1] = {w};
	uint64_t	size;
	uint8_t    *buf;
	RsFormatView v;
	char		err[256];

	CHECK(rs_format_layout(1, d, 0, &size, err, sizeof(err)) == RS_OK);
	buf = malloc(size);
	rs_format_write(buf, size, RS_KIND_GRU, 1, d, data, NULL, 0);
	CHECK(rs_format_parse(buf, size, &v, err, sizeof(err)) == RS_ERR_NONFINITE);
	CHECK(strstr(err, "NaN") != NULL);
	w[1] = INFINITY;
	rs_format_write(buf, size, RS_KIND_GRU, 1, d, data, NULL, 0);
	CHECK(rs_format_parse(buf, size, &v, err, sizeof(err)) == RS_ERR_NONFINITE);
	free(buf);
}

static void
test_layout_arguments(int *failed)
{
	uint64_t	size;
	char		err[256];
	RsTensorDesc bad_name[1] = {{.name = "Layer", .ndim = 1, .dims = {2}}};
	RsTensorDesc dup[2] = {{.name = "a", .ndim = 1, .dims = {2}}, {.name = "a", .ndim = 1, .dims = {2}}};
	RsTensorDesc zero_dim[1] = {{.name = "a", .ndim = 2, .dims = {2, 0}}};
	RsTensorDesc five_dims[1] = {{.name = "a", .ndim = 5, .dims = {1, 1, 1, 1}}};
	RsTensorDesc huge[1] = {{.name = "a", .ndim = 2, .dims = {1 << 20, 1 << 20}}};

	CHECK(rs_format_layout(1, bad_name, 0, &size, err, sizeof(err)) == RS_ERR_ARGUMENT);
	CHECK(rs_format_layout(2, dup, 0, &size, err, sizeof(err)) == RS_ERR_ARGUMENT);
	CHECK(strstr(err, "twice") != NULL);
	CHECK(rs_format_layout(1, zero_dim, 0, &size, err, sizeof(err)) == RS_ERR_DIMS);
	CHECK(rs_format_layout(1, five_dims, 0, &size, err, sizeof(err)) == RS_ERR_DIMS);
	CHECK(rs_format_layout(1, huge, 0, &size, err, sizeof(err)) == RS_ERR_DIMS);
	CHECK(rs_format_layout(0, bad_name, 0, &size, err, sizeof(err)) == RS_ERR_ARGUMENT);
}

static void
test_header_messages(int *failed)
{
	uint64_t	size;
	uint8_t    *buf = small_model(&size, "");
	RsFormatView v;
	char		err[256];

	buf[4] = 2;					/* version 2 */
	CHECK(rs_format_parse(buf, size, &v, err, sizeof(err)) == RS_ERR_VERSION);
	CHECK(strstr(err, "version 2") != NULL);
	buf[4] = 1;
	buf[0] = 'X';
	CHECK(rs_format_parse(buf, size, &v, err, sizeof(err)) == RS_ERR_MAGIC);
	buf[0] = 'R';
	buf[8] = 99;				/* kind */
	CHECK(rs_format_parse(buf, size, &v, err, sizeof(err)) == RS_ERR_KIND);
	buf[8] = RS_KIND_MLP;
	buf[size - 1] ^= 1;
	CHECK(rs_format_parse(buf, size, &v, err, sizeof(err)) == RS_ERR_CRC);
	CHECK(strstr(err, "checksum") != NULL);
	free(buf);
}

static void
test_kind_names(int *failed)
{
	CHECK(rs_kind_from_name("gru") == RS_KIND_GRU);
	CHECK(rs_kind_from_name("lstm") == 0);
	CHECK(strcmp(rs_kind_name(RS_KIND_BUNDLE), "bundle") == 0);
	CHECK(rs_kind_name(0) == NULL && rs_kind_name(RS_KIND_MAX + 1) == NULL);
}

const UnitCase unit_format_cases[] = {
	{"format: round trip", test_round_trip},
	{"format: same input, same bytes", test_deterministic_bytes},
	{"format: every flipped byte and truncation rejected", test_every_corruption_rejected},
	{"format: NaN/Inf rejected even with a valid CRC", test_nonfinite_rejected},
	{"format: writer validates names and dims", test_layout_arguments},
	{"format: header errors name the problem", test_header_messages},
	{"format: kind names", test_kind_names},
	{NULL, NULL}
};
