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
	if [ "${status:-1}" -eq 0 ]; then rm -rf "$work"; else echo "valgrind logs kept in $work/logs"; fi
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

# A report is a block that starts with "==pid== <Kind>" and ends at a blank
# "==pid==" line; it is ours when a frame is in mf_ext.so: a function the
# library defines (nm), or a frame shown only by the library's name.
nm --defined-only "$($PG_CONFIG --pkglibdir)/mf_ext.so" | awk '$2 ~ /^[tT]$/ { print $3 }' \
	| sed 's/\..*//' | sort -u > "$work/symbols.txt"
mkdir -p "$work/blocks"
i=0
for log in "$work"/logs/vg.*.log; do
	i=$((i + 1))
	awk -v out="$work/blocks/$i" '/^==[0-9]+== [A-Z]/ { n++ } /^==[0-9]+== *$/ { next }
		n > 0 { print > (out "-" n) }' "$log"
done
: > "$work/ours.txt"
for block in "$work"/blocks/*; do
	[ -e "$block" ] || continue
	if grep -q 'mf_ext\.so' "$block" ||
		grep -E '(at|by) 0x[0-9A-F]+: ' "$block" | sed -E 's/.*: ([A-Za-z_0-9.]+) .*/\1/' \
			| sed 's/\..*//' | grep -qxF -f "$work/symbols.txt"; then
		cat "$block" >> "$work/ours.txt"
		echo >> "$work/ours.txt"
	fi
done
total=$(ls "$work"/blocks | wc -l)
ours=$(grep -c '^==[0-9]*== [A-Z]' "$work/ours.txt" || true)
echo "valgrind: $(ls "$work"/logs | wc -l) processes traced, $total report blocks in all, $ours with a frame in mf_ext ($(wc -l < "$work/symbols.txt") functions checked)"
if [ "$ours" -gt 0 ]; then
	cat "$work/ours.txt"
	status=1
fi
exit $status
