/*
 * rs_crc32c.c — gives the plain-C core PostgreSQL's CRC-32C (hardware accelerated
 * where the CPU has it). Needs only c.h, so the unit tests link it too.
 */
#include "c.h"

#include "port/pg_crc32c.h"

#include "core/rs_format.h"

uint32_t
rs_crc32c(const void *data, size_t len)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, data, len);
	FIN_CRC32C(crc);
	return (uint32_t) crc;
}
