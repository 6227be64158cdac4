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

#endif
