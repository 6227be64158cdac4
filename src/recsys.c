/*
 * recsys.c — module entry: _PG_init and the version probe.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include <cblas.h>

#include "core_host.h"

PG_MODULE_MAGIC;

/* Declared by OpenBLAS but not in every cblas.h variant. */
extern void openblas_set_num_threads(int num_threads);

void		_PG_init(void);

void
_PG_init(void)
{
	/* A backend is one thread; OpenBLAS threads would race with signals and elog. */
	openblas_set_num_threads(1);
	/* the core's random numbers and checksums are PostgreSQL's */
	rs_core_use_postgres();
}

PG_FUNCTION_INFO_V1(recsys_module_version);

/* The version compiled into the shared library, from the control file via the Makefile. */
Datum
recsys_module_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(RECSYS_VERSION));
}
