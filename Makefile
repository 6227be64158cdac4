# recsys — PGXS build. The version lives in recsys.control alone; everything else derives from it.
EXTENSION  = recsys
EXTVERSION = $(shell sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" $(EXTENSION).control)
MODULE_big = recsys

CORE_OBJS = src/core/rs_format.o
OBJS = src/recsys.o src/rs_crc32c.o src/model_io.o $(CORE_OBJS)

DATA = sql/$(EXTENSION)--$(EXTVERSION).sql

# pg_regress suites: sql/NAME.sql against expected/NAME.out
REGRESS = version weights_format registration prepare recommend demo_shop
REGRESS_OPTS = --inputdir=.

OPENBLAS_CFLAGS ?= $(shell pkg-config --cflags openblas 2>/dev/null || echo -I/usr/include/x86_64-linux-gnu/openblas-pthread)
PG_CPPFLAGS = -I$(srcdir)/src $(OPENBLAS_CFLAGS) -DRECSYS_VERSION='"$(EXTVERSION)"'
# overridable; -Werror is added by CI only (RECSYS_WERROR=1)
OPTFLAGS ?= -O2
PG_CFLAGS = $(OPTFLAGS) -Wall $(if $(RECSYS_WERROR),-Werror,)
SHLIB_LINK = -lopenblas -lm

EXTRA_CLEAN = results regression.diffs regression.out test/unit/run_unit

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The install script must exist under the control file's version.
$(DATA):
	@echo "missing install script $@ for default_version $(EXTVERSION) in $(EXTENSION).control" >&2; exit 1

# C unit tests of the plain-C core (no server needed).
UNIT_SRCS = test/unit/run_unit.c test/unit/test_format.c
PG_LIBDIR := $(shell $(PG_CONFIG) --pkglibdir)
test/unit/run_unit: $(UNIT_SRCS) $(CORE_OBJS:.o=.c) src/rs_crc32c.c test/unit/unit.h
	$(CC) $(OPTFLAGS) -Wall -I$(srcdir)/src -I$(includedir_server) $(OPENBLAS_CFLAGS) -o $@ \
	  $(UNIT_SRCS) $(CORE_OBJS:.o=.c) src/rs_crc32c.c $(PG_LIBDIR)/libpgport.a -lopenblas -lm

unitcheck: test/unit/run_unit
	test/unit/run_unit

.PHONY: unitcheck
