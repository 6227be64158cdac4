/*
 * model_io.h — weights bytea <-> core format, with PostgreSQL error reporting.
 */
#ifndef RECSYS_MODEL_IO_H
#define RECSYS_MODEL_IO_H

#include "postgres.h"

#include "core/rs_format.h"

/* Weights arrive as (possibly toasted, possibly short-header) bytea. */
#define PG_GETARG_WEIGHTS_P(n) PG_GETARG_BYTEA_PP(n)

/* Validates a weights value completely, or ERRORs with ERRCODE_DATA_CORRUPTED. */
extern void RecsysWeightsParse(bytea *weights, RsFormatView *view);

/* Builds a v1 weights value; ERRORs (invalid_parameter_value) on bad shapes or names. */
extern bytea *RecsysWeightsBuild(int kind, int ntensors, RsTensorDesc *descs,
								 const float *const *data,
								 const char *config, size_t config_len);

/*
 * A cheap identity of a weights argument, for per-query model caches. A value read
 * from a table is usually an on-disk TOAST pointer: its (toast relation, value id,
 * size) names it without detoasting megabytes per row. Otherwise the key is the
 * length and the stored CRC of the (small, in-line) value.
 */
typedef struct RecsysWeightsKey
{
	Oid			toastrel;
	Oid			valueid;
	Size		size;
	uint32		crc;
} RecsysWeightsKey;

extern void RecsysWeightsKeyOf(Datum weights, RecsysWeightsKey *key);
extern bool RecsysWeightsKeyEqual(const RecsysWeightsKey *a, const RecsysWeightsKey *b);

#endif
