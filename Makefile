# mf_ext: PGXS build of the extension, its regression (pg_regress) and TAP tests.
#
#   make && make install        build and install into the server of $(PG_CONFIG)
#   make installcheck           pg_regress suites in sql/ + TAP tests in test/t/
#                               (against a running server; test/run-tests.sh wraps
#                               this in a throw-away cluster)

EXTENSION   = mf_ext
MODULE_big  = mf_ext
OBJS        = src/mf_ext.o src/blas.o src/ratings.o src/als.o src/store.o \
              src/cache.o src/serve.o src/train.o src/evaluate.o src/tune.o \
              src/refit.o src/parallel.o src/batch.o
DATA        = sql/mf_ext--0.1.sql sql/mf_ext--0.1--0.2.sql sql/mf_ext--0.2--0.3.sql \
              sql/mf_ext--0.3--0.4.sql sql/mf_ext--0.4--0.5.sql
HEADERS     =

# Regression suites, in run order (sql/NAME.sql, expected/NAME.out).
REGRESS      = worked_example train serve retrain errors limits recreate quality implicit neighbours keys trust security upgrade
REGRESS_OPTS = --load-extension=$(EXTENSION)

# TAP tests (PostgreSQL::Test::Cluster); need a non-root user for initdb.
TAP_TESTS   = 1
PROVE_TESTS = test/t/*.pl

# Warnings are errors by default; `make MF_WERROR=` relaxes that locally.
# -Wextra minus two checks that PostgreSQL's own headers trip
# (unused parameters in lib/simplehash.h, a signed ?: in utils/array.h).
MF_WERROR  ?= -Werror
PG_CFLAGS  += -std=gnu11 -Wall -Wextra $(MF_WERROR) \
              -Wno-unused-parameter -Wno-sign-compare
# OpenBLAS is dlopen()ed at first use (src/blas.c); only its headers are
# needed to build.
PG_CPPFLAGS += -I$(srcdir)/src
PG_CFLAGS   += -pthread
SHLIB_LINK  += -pthread -lm

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Benchmarks (not part of installcheck or CI): speed (test/bench/run.sh),
# accuracy (test/bench/accuracy.sh) and batch top-N (test/bench/batch.sh).
.PHONY: bench bench-speed bench-accuracy bench-batch
bench: bench-speed bench-accuracy bench-batch
bench-speed:
	bash test/bench/run.sh
bench-accuracy:
	bash test/bench/accuracy.sh
bench-batch:
	bash test/bench/batch.sh

# The regression suites under valgrind (test/valgrind.sh; slow, not in CI).
.PHONY: valgrind
valgrind:
	bash test/valgrind.sh

# Every object depends on the shared header (PGXS tracks no header deps).
$(OBJS): src/mf_ext.h src/blas.h
src/als.o: src/als_kernel.h
