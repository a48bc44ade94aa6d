#!/usr/bin/env bash
# Runs every test: builds and installs mf_ext, then `make installcheck`
# (the pg_regress suites in sql/ and the TAP tests in test/t/) inside a
# throw-away cluster made by pg_virtualenv, then the pg_regress suites again
# against a server whose OpenBLAS is forced to its SSE3 kernels
# (test/regress-kernel.sh).  initdb refuses to run as root, so the tests run
# as the postgres user in a copy of this tree.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/build.sh
bash test/install-citus.sh     # for test/t/016_citus.pl

work=$(mktemp -d /tmp/mf_ext-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -a . "$work/tree"
chown -R postgres: "$work"

status=0
runuser -u postgres -- env PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config \
	pg_virtualenv make -C "$work/tree" installcheck || status=$?

if [ -f "$work/tree/regression.diffs" ]; then
	echo "=== regression.diffs ==="
	cat "$work/tree/regression.diffs"
fi
for log in "$work"/tree/tmp_check/log/regress_log_*; do
	if [ $status -ne 0 ] && [ -f "$log" ]; then
		echo "=== $log (tail) ==="
		tail -n 60 "$log"
	fi
done

# Expected outputs must hold whatever kernels OpenBLAS picks for the CPU:
# the suites once more with its Prescott (SSE3) kernels, which every x86-64
# runs (skipped elsewhere).  The script prints its own regression.diffs.
runuser -u postgres -- env PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config \
	pg_virtualenv bash "$work/tree/test/regress-kernel.sh" Prescott || status=$?
exit $status
