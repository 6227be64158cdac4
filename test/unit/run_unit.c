/*
 * run_unit.c — runs every unit case, prints one line per case and a closing
 * "N passed, N failed" line that scripts/test.sh adds to the total.
 */
#include <string.h>

#include "core_host.h"
#include "unit.h"

#ifdef RS_DOUBLE
#define BUILD "unit (double)"
static const UnitCase *const suites[] = {unit_nn_cases, NULL};
#else
#define BUILD "unit"
static const UnitCase *const suites[] = {unit_format_cases, unit_nn_cases, unit_bundle_cases, unit_kind_cases, unit_items_cases, unit_lowrank_cases, unit_demand_cases, unit_tile_cases, NULL};
#endif

int
main(int argc, char **argv)
{
	int			passed = 0,
				failed_cases = 0;

	rs_core_use_postgres();

	for (int s = 0; suites[s]; s++)
		for (const UnitCase *c = suites[s]; c->name; c++)
		{
			int			failed = 0;

			if (argc > 1 && strstr(c->name, argv[1]) == NULL)
				continue;
			c->fn(&failed);
			printf("%s %s\n", failed ? "not ok" : "ok", c->name);
			if (failed)
				failed_cases++;
			else
				passed++;
		}
	printf("%s: %d passed, %d failed\n", BUILD, passed, failed_cases);
	return failed_cases ? 1 : 0;
}
