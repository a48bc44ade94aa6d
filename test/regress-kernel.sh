#!/usr/bin/env bash
# Runs the regression suites (sql/ against expected/) once more, against a
# server whose OpenBLAS is forced to the kernel family CORETYPE (a name that
# OPENBLAS_CORETYPE takes: Prescott, Nehalem, Sandybridge, Haswell, Zen,
# SkylakeX, ...).  The expected outputs must hold whatever kernels OpenBLAS
# picks and whatever SIMD the CPU has; test/run-tests.sh proves it by running
# this with Prescott (SSE3, which every x86-64 CPU runs) after the normal run.
#
# Run inside pg_virtualenv (it restarts the cluster "regress" that
# pg_virtualenv made), as that cluster's owner:
#   pg_virtualenv bash test/regress-kernel.sh Prescott
# The results go to regress-CORETYPE/ (regression.diffs printed on failure).
# On a machine that is not x86-64 it prints that it skips and succeeds.
set -euo pipefail
core=${1:?usage: regress-kernel.sh CORETYPE (an OpenBLAS core type, such as Prescott)}
cd "$(dirname "$0")/.."

arch=$(uname -m)
if [ "$arch" != x86_64 ]; then
	echo "regress-kernel.sh: skipped: this machine is $arch, not x86-64, so OpenBLAS's $core kernels cannot be forced"
	exit 0
fi
: "${PGVERSION:?regress-kernel.sh: run this inside pg_virtualenv}"

# OpenBLAS quietly falls back to other kernels on a name it does not know:
# ask it, as the server loads it (src/blas.c), which kernels the name gets.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
cat > "$probe/corename.c" <<'EOF'
#include <dlfcn.h>
#include <stdio.h>
int main(void)
{
	void *lib = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
	char *(*corename)(void) = lib ? (char *(*)(void)) dlsym(lib, "openblas_get_corename") : NULL;
	if (!corename)
		return 1;
	puts(corename());
	return 0;
}
EOF
gcc -o "$probe/corename" "$probe/corename.c" -ldl
got=$(OPENBLAS_CORETYPE=$core "$probe/corename") || got=
if [ "${got,,}" != "${core,,}" ]; then
	echo "regress-kernel.sh: OPENBLAS_CORETYPE=$core gives OpenBLAS's ${got:-unknown} kernels, not $core ones" \
		"(a core type this OpenBLAS does not know, or not a DYNAMIC_ARCH build)" >&2
	exit 1
fi

# pg_ctlcluster gives the server only the variables of this file.
conf=${PG_CLUSTER_CONF_ROOT:-/etc/postgresql}/$PGVERSION/regress
echo "OPENBLAS_CORETYPE = '$core'" >> "$conf/environment"
pg_ctlcluster "$PGVERSION" regress restart
pid=$(head -n 1 "$(pg_conftool -s "$PGVERSION" regress show data_directory)/postmaster.pid")
if ! tr '\0' '\n' < "/proc/$pid/environ" | grep -qx "OPENBLAS_CORETYPE=$core"; then
	echo "regress-kernel.sh: the restarted server (pid $pid) has no OPENBLAS_CORETYPE=$core" >&2
	exit 1
fi

out=regress-$core
rm -rf "$out"
mkdir "$out"
echo "== the regression suites again, the server's OpenBLAS forced to its $got kernels (results in $out/)"
status=0
make -s installcheck TAP_TESTS= EXTRA_REGRESS_OPTS="--outputdir=$out" || status=$?
if [ $status -ne 0 ] && [ -f "$out/regression.diffs" ]; then
	echo "=== $out/regression.diffs (OpenBLAS: $got) ==="
	cat "$out/regression.diffs"
fi
exit $status
