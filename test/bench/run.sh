#!/usr/bin/env bash
# `make bench`: builds and installs mf_ext, compiles the BLAS probe, starts a
# throw-away cluster and runs test/bench/bench.sh in it; then prints the
# results as a table and draws test/bench/iteration.svg with gnuplot.
# Knobs (environment): MF_BENCH_SHAPES, MF_BENCH_KS, MF_BENCH_ITERATIONS.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash test/build.sh
if ! command -v gnuplot >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gnuplot-nox >/dev/null
fi

out=$(mktemp -d /tmp/mf_ext-bench.XXXXXX)
chmod 755 "$out"
gcc -O2 -std=gnu11 -I/usr/include/x86_64-linux-gnu/openblas-pthread \
	-o "$out/probe" test/bench/probe.c -lopenblas -lpthread
gcc -O2 -std=gnu11 -Isrc -I"$(pg_config --includedir-server)" -I/usr/include/x86_64-linux-gnu/openblas-pthread \
	-o "$out/kernels" test/bench/kernels.c -lopenblas -lm
gcc -O2 -std=gnu11 -o "$out/rss_peak" test/bench/rss_peak.c
export OPENBLAS_NUM_THREADS=1

# The kernels alone, one thread: rows of 143 ratings (ML-10M's mean per
# user) of 10,677 items (its item count).
echo "== kernels, one thread, rows of 143 ratings among 10,677"
"$out/kernels" 32,64,128 143 10677 1 | tee "$out/kernels.tsv" | column -t -s $'\t'

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
pg_virtualenv -o shared_buffers=256MB -o max_parallel_workers_per_gather=0 \
	bash test/bench/bench.sh "$out" "$out/probe" "$out/rss_peak"

bash test/bench/report.sh "$out" | tee "$out/report.md"
echo
bash test/bench/targets.sh "$out" | tee "$out/targets.md"
cp "$out/results.tsv" test/bench/results.tsv
for f in serving.tsv cancel.tsv kernels.tsv kernel_paths.tsv load.tsv; do
	if [ -f "$out/$f" ]; then cp "$out/$f" "test/bench/$f"; fi
done
echo "results in $out and test/bench/"
