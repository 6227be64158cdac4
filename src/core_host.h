/*
 * core_host.h — points the core's host hooks (rs_host) at PostgreSQL's pg_prng and
 * pg_crc32c. No PostgreSQL header here: the unit tests, fuzzers and benchmark include it.
 */
#ifndef RECSYS_CORE_HOST_H
#define RECSYS_CORE_HOST_H

extern void rs_core_use_postgres(void);

#endif
