#!/usr/bin/env bash
# `make bench-accuracy` (also run by `make bench`): builds and installs
# mf_ext and, in a throw-away cluster, cross-validates the configurations of
# test/bench/accuracy.sql on the rating sets in ../shared/data (override with
# MF_DATA_DIR), and runs the implicit-feedback comparison of
# test/bench/implicit.sql, and times the neighbour functions
# (test/bench/latency.sql).  Prints the tables and writes
# test/bench/accuracy.tsv, implicit.tsv and latency.tsv.
set -euo pipefail
cd "$(dirname "$0")/../.."
data_dir=$(cd "${MF_DATA_DIR:-../shared/data}" && pwd)
for f in ml-latest-small.tsv.xz filmtrust.tsv.xz; do
	if [ ! -r "$data_dir/$f" ]; then
		echo "accuracy.sh: $data_dir/$f is missing; set MF_DATA_DIR" >&2
		exit 1
	fi
done
bash test/build.sh

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
out=$(mktemp -d /tmp/mf_ext-accuracy.XXXXXX)
chmod 755 "$out"
pg_virtualenv -o shared_buffers=256MB sh -c "
	psql -X -q -c 'CREATE EXTENSION mf_ext' &&
	psql -X -q -v data_dir='$data_dir' -f test/bench/accuracy.sql -A -F '	' -P footer=off > '$out/accuracy.tsv' &&
	psql -X -q -v data_dir='$data_dir' -f test/bench/implicit.sql -A -F '	' -P footer=off > '$out/implicit.tsv' &&
	psql -X -q -v data_dir='$data_dir' -f test/bench/latency.sql -A -F '	' -P footer=off > '$out/latency.tsv'"
for f in accuracy implicit latency; do
	column -t -s "$(printf '\t')" "$out/$f.tsv"
	echo
	cp "$out/$f.tsv" "test/bench/$f.tsv"
done
echo "results in test/bench/accuracy.tsv, implicit.tsv and latency.tsv"
