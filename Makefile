# recsys — PGXS build. The version lives in recsys.control alone; everything else derives from it.
EXTENSION  = recsys
EXTVERSION = $(shell sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" $(EXTENSION).control)
MODULE_big = recsys

CORE_OBJS = src/core/rs_kind.o src/core/rs_fit.o src/core/rs_lowrank.o src/core/rs_items.o src/core/rs_format.o src/core/rs_core.o src/core/rs_loss.o src/core/rs_optim.o src/core/rs_mlp.o src/core/rs_seq.o src/core/rs_tile.o src/core/rs_ease.o src/core/rs_bundle.o src/core/rs_metrics.o src/core/rs_demand.o
OBJS = src/recsys.o src/core_host.o src/model_io.o src/nn_model.o src/nn_forward.o src/train_agg.o src/scorer_epochs.o src/ease.o src/features.o src/baskets.o src/mining.o src/prepared.o src/bundle_fit.o src/bundle_load.o src/bundle_samples.o src/serving.o src/serving_cache.o src/serving_options.o src/serving_reasons.o src/profiles.o src/metrics.o src/options.o src/items.o src/demand.o $(CORE_OBJS)

# SQL: one source file per concept (sql/src/NN_concept.sql, in dependency order) holds every object's current
# definition; the install script of the version in work is their concatenation, and its upgrade script from the
# last release is sql/updates/ expanded: "--#include FILE OBJECT" pulls the object's block ("--@begin OBJECT" ..
# "--@end") from its source file, so a change to one function is one edit, carried by both. Released scripts
# (sql/RELEASED) are committed, frozen and installed as they are (test/layout.sh checks them); on a release the
# two built scripts are committed beside them and listed there.
SQL_SRCS = $(sort $(wildcard sql/src/*.sql))
SQL_UPDATES = $(patsubst sql/updates/%,sql/%,$(wildcard sql/updates/$(EXTENSION)--*--$(EXTVERSION).sql))
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql $(SQL_UPDATES)
DATA = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*.sql))

# pg_regress suites: sql/NAME.sql against expected/NAME.out
REGRESS = version weights_format registration prepare recommend demo_shop nn ease features serving catalogue metrics evaluation bad_input hostile items promotions
REGRESS_OPTS = --inputdir=.

OPENBLAS_CFLAGS ?= $(shell pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)
PG_CPPFLAGS = -I$(srcdir)/src $(OPENBLAS_CFLAGS) -DRECSYS_VERSION='"$(EXTVERSION)"'
# overridable; -Werror is added by CI only (RECSYS_WERROR=1). -O3 lets gcc vectorise the
# elementwise loops of the core (activations, optimiser steps) next to the BLAS calls.
OPTFLAGS ?= -O3
# -fno-math-errno: no errno branch around sqrtf/expf, so the optimiser loops vectorise (nothing reads errno);
# -fno-trapping-math: a compare may become a select, so the GRU's gate loops (a clamp in their inlined e^x)
# vectorise (nothing enables floating-point traps; results are unchanged)
MATHFLAGS = -fno-math-errno -fno-trapping-math
PG_CFLAGS = $(OPTFLAGS) $(MATHFLAGS) -Wall $(if $(RECSYS_WERROR),-Werror,)
SHLIB_LINK = -lopenblas -lm
# RECSYS_SANITIZE=undefined (or address,undefined): a sanitizer build of the module; scripts/sanitize.sh runs
# the regression suites on a server that loads it (address needs libasan preloaded into the server)
ifdef RECSYS_SANITIZE
PG_CFLAGS += -fsanitize=$(RECSYS_SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer -O1
SHLIB_LINK += -fsanitize=$(RECSYS_SANITIZE)
endif

EXTRA_CLEAN = results regression.diffs regression.out test/unit/run_unit test/unit/run_unit_f64 test/unit/core_host.o bench/core_bench bench/fit_bench

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: rebuild every object when any header changes
# (a struct that grows must never meet an object compiled against its old layout).
$(OBJS): $(wildcard src/*.h src/core/*.h)

# The control file's version must be the end of a script: a base script or an upgrade to it.
ifeq ($(SQL_SRCS)$(wildcard sql/$(EXTENSION)--$(EXTVERSION).sql),)
$(error no install script (sql/src/) for default_version $(EXTVERSION) in $(EXTENSION).control)
endif

# C unit tests of the plain-C core (no server needed): run_unit is the float build the
# server runs, run_unit_f64 the double reference build for the gradient checks. The core and
# the tests compile without the server include path (CORE_CC): only src/core_host.c, the
# hooks to pg_prng and pg_crc32c, sees PostgreSQL's headers (HOST_CC).
NN_SRCS = src/core/rs_kind.c src/core/rs_core.c src/core/rs_loss.c src/core/rs_optim.c src/core/rs_mlp.c src/core/rs_seq.c src/core/rs_tile.c src/core/rs_ease.c
UNIT_SRCS = test/unit/run_unit.c test/unit/test_format.c test/unit/test_nn.c test/unit/test_bundle.c test/unit/test_kinds.c src/core/rs_bundle.c src/core/rs_fit.c src/core/rs_lowrank.c test/unit/test_lowrank.c src/core/rs_items.c test/unit/test_items.c test/unit/test_demand.c src/core/rs_demand.c test/unit/test_tile.c
UNIT_DEPS = $(UNIT_SRCS) $(NN_SRCS) src/core/rs_format.c test/unit/core_host.o test/unit/unit.h $(wildcard src/core/*.h)
PG_LIBDIR := $(shell $(PG_CONFIG) --pkglibdir)
CORE_CC = $(CC) -std=gnu11 $(OPTFLAGS) $(MATHFLAGS) -Wall -I$(srcdir)/src $(OPENBLAS_CFLAGS)
HOST_CC = $(CC) $(OPTFLAGS) -Wall -I$(srcdir)/src -I$(includedir_server)
UNIT_LIBS = test/unit/core_host.o $(PG_LIBDIR)/libpgcommon.a $(PG_LIBDIR)/libpgport.a -lopenblas -lm

test/unit/core_host.o: src/core_host.c src/core_host.h src/core/rs_core.h
	$(HOST_CC) -c -o $@ src/core_host.c

test/unit/run_unit: $(UNIT_DEPS)
	$(CORE_CC) -o $@ $(UNIT_SRCS) $(NN_SRCS) src/core/rs_format.c $(UNIT_LIBS)

test/unit/run_unit_f64: $(UNIT_DEPS)
	$(CORE_CC) -DRS_DOUBLE -o $@ test/unit/run_unit.c test/unit/test_nn.c $(NN_SRCS) $(UNIT_LIBS)

# the core's boundary: every core file compiles, warning-free, without the server include path
check-core:
	$(CORE_CC) -Werror -Wmissing-prototypes -fsyntax-only $(wildcard src/core/*.c)
	@echo "check-core: src/core compiles without the PostgreSQL include path"

unitcheck: check-core test/unit/run_unit test/unit/run_unit_f64
	test/unit/run_unit; a=$$?; test/unit/run_unit_f64; b=$$?; exit $$((a || b))

# The core standalone benchmark (bench/nn_bench.sh runs it).
bench/core_bench: bench/core_bench.c $(NN_SRCS) test/unit/core_host.o $(wildcard src/core/*.h)
	$(CORE_CC) -o $@ bench/core_bench.c $(NN_SRCS) $(UNIT_LIBS)

# The bundle fit at catalogue scale on the core alone (bench/fit_bench.sh runs it).
bench/fit_bench: bench/fit_bench.c src/core/rs_lowrank.c src/core/rs_fit.c src/core/rs_bundle.c src/core/rs_core.c test/unit/core_host.o $(wildcard src/core/*.h)
	$(CORE_CC) -O2 -o $@ bench/fit_bench.c src/core/rs_lowrank.c src/core/rs_fit.c src/core/rs_bundle.c src/core/rs_ease.c src/core/rs_core.c $(UNIT_LIBS)

.PHONY: unitcheck check-core

sql/$(EXTENSION)--$(EXTVERSION).sql: $(SQL_SRCS) $(EXTENSION).control Makefile
	{ printf '%s\n' '/* recsys install script, version $(EXTVERSION): built by the Makefile from sql/src/ (do not edit) */' \
	         '\echo Use "CREATE EXTENSION recsys" to load this file. \quit'; \
	  for f in $(SQL_SRCS); do echo; cat $$f; done; } > $@.tmp && mv $@.tmp $@

sql/$(EXTENSION)--%--$(EXTVERSION).sql: sql/updates/$(EXTENSION)--%--$(EXTVERSION).sql $(SQL_SRCS) scripts/sql_include.awk
	awk -f scripts/sql_include.awk $< > $@.tmp && mv $@.tmp $@

# the module's version() is compiled in from the control file
src/recsys.o: $(EXTENSION).control
