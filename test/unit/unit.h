/* unit.h — a tiny test runner for the plain-C core: no dependencies. */
#ifndef RECSYS_UNIT_H
#define RECSYS_UNIT_H

#include <stdio.h>

typedef void (*UnitFn) (int *failed);

typedef struct UnitCase
{
	const char *name;
	UnitFn		fn;
} UnitCase;

/* CHECK records a failure with its line and keeps going. */
#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
		(*failed)++; \
	} \
} while (0)

#define CHECK_MSG(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__); \
		fprintf(stderr, "\n"); \
		(*failed)++; \
	} \
} while (0)

extern const UnitCase unit_format_cases[];
extern const UnitCase unit_nn_cases[];
extern const UnitCase unit_bundle_cases[];
extern const UnitCase unit_kind_cases[];
extern const UnitCase unit_items_cases[];
extern const UnitCase unit_lowrank_cases[];
extern const UnitCase unit_demand_cases[];
extern const UnitCase unit_tile_cases[];

#endif
