#!/usr/bin/env bash
# `make valgrind`: runs the pg_regress suites against a throw-away server
# started under valgrind (memcheck, every backend traced), and fails if any
# report has an mf_ext frame: an invalid read or write, a use of an
# uninitialised value, or memory definitely lost.  PostgreSQL's own reports
# (Debian's server is not built for valgrind) are counted, not judged.
# Slow: about 50x the normal run.  Knob: MF_VALGRIND_SUITES="train serve"
# runs only those suites (serve and later ones use models train makes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/build.sh
command -v valgrind >/dev/null || { apt-get install -y -q valgrind >/dev/null; }
export PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
bindir=$($PG_CONFIG --bindir)
work=$(mktemp -d /tmp/mf_ext-valgrind.XXXXXX)
cleanup() {
	if [ -f "$work/data/postmaster.pid" ]; then
		kill -INT "$(head -1 "$work/data/postmaster.pid")" 2>/dev/null || true
		sleep 5
	fi
	rm -rf "$work"
}
trap cleanup EXIT
cp -a . "$work/tree"
mkdir -p "$work/logs"
chown -R postgres: "$work"

runuser -u postgres -- "$bindir/initdb" -D "$work/data" -A trust >/dev/null
port=54328
runuser -u postgres -- valgrind --quiet --trace-children=yes --track-origins=yes \
	--leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
	--num-callers=30 --log-file="$work/logs/vg.%p.log" \
	"$bindir/postgres" -D "$work/data" -p $port -k "$work" -c max_connections=20 \
	>"$work/server.log" 2>&1 &
for _ in $(seq 1 120); do
	runuser -u postgres -- "$bindir/pg_isready" -q -h "$work" -p $port && break
	sleep 1
done

suites=${MF_VALGRIND_SUITES:-}
status=0
runuser -u postgres -- env PGHOST="$work" PGPORT=$port \
	make -C "$work/tree" installcheck PROVE_TESTS= TAP_TESTS= ${suites:+REGRESS="$suites"} || status=$?
[ -f "$work/tree/regression.diffs" ] && cat "$work/tree/regression.diffs"
kill -INT "$(head -1 "$work/data/postmaster.pid")"
for _ in $(seq 1 120); do [ -f "$work/data/postmaster.pid" ] || break; sleep 1; done

# a report is a block that starts with "==pid== <kind>" and ends at a blank line
awk '/^==[0-9]+== [A-Z]/ { if (block ~ /mf_ext/) print block "\n"; block = $0; next }
	/^==[0-9]+== *$/ { if (block ~ /mf_ext/) print block "\n"; block = ""; next }
	{ block = block "\n" $0 }
	END { if (block ~ /mf_ext/) print block }' "$work"/logs/vg.*.log > "$work/ours.txt"
total=$(grep -hc '^==[0-9]*== [A-Z]' "$work"/logs/vg.*.log | awk '{ s += $1 } END { print s + 0 }')
ours=$(grep -c '^==[0-9]*== [A-Z]' "$work/ours.txt" || true)
echo "valgrind: $(ls "$work"/logs | wc -l) processes traced, $total report lines in all, $ours in reports with an mf_ext frame"
if [ "$ours" -gt 0 ]; then
	cat "$work/ours.txt"
	status=1
fi
exit $status
