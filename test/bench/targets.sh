#!/usr/bin/env bash
# Prints issue 13's speed targets against one run of `make bench-speed`, as
# a Markdown table: each target, the ratio or figure measured in DIR (the
# run's TSV files, see report.sh), and whether it is met.  A target whose
# figures the run lacks (a shape or k not run, no AVX-512) says so.
# Usage: targets.sh DIR
set -euo pipefail
dir=$1

# the value of column col of the first row of file matching awk condition cond, or empty
pick() {
	local file=$1 cond=$2 col=$3
	[ -f "$dir/$file" ] || return 0
	awk -F'\t' "$cond { print \$$col; exit }" "$dir/$file"
}

# one line of the table: target, measured text, and whether value <= limit
# (or >= limit with op ">=")
row() {
	local target=$1 value=$2 shown=$3 op=$4 limit=$5
	local status
	if [ -z "$value" ]; then
		echo "| $target | not in this run | - |"
		return
	fi
	status=$(awk -v v="$value" -v l="$limit" -v op="$op" \
		'BEGIN { print ((op == "<=" ? v <= l : v >= l) ? "**met**" : "**missed**") }')
	echo "| $target | $shown | $status |"
}

# a / b unrounded (compared); r3 rounds a figure to 3 decimals (shown)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print ""; else printf "%.6f", a / b }'; }
r3() { awk -v x="$1" 'BEGIN { printf "%.3f", x }'; }

echo "| target (issue 13) | measured in this run | status |"
echo "|---|---|---|"

# exact iterations against the probe, ML-10M shape, all cores
threads=$(awk -F'\t' 'NR > 1 && $6 > max { max = $6 } END { print max + 0 }' "$dir/results.tsv")
for k in 64 32 128; do
	limit=$([ "$k" = 64 ] && echo 0.35 || echo 0.40)
	it=$(pick results.tsv "\$1 == \"ml-10m\" && \$5 == $k && \$6 == $threads" 9)
	probe=$(pick results.tsv "\$1 == \"ml-10m\" && \$5 == $k && \$6 == $threads" 10)
	r=$(ratio "$it" "$probe")
	row "exact iteration, ML-10M shape, k = $k, $threads threads, ≤ ${limit}× the probe" "$r" \
		"$(r3 "$r")× ($(r3 "$it") s against $(r3 "$probe") s)" "<=" "$limit"
done

# the Gram kernel alone against the measured FMA peak, the widest kernel the CPU runs
widest=$(awk -F'\t' '$1 == "gram avx512" { print "avx512"; exit } $1 == "gram avx2" { w = "avx2" } END { if (w != "") print w }' \
	"$dir/kernels.tsv" 2>/dev/null | head -1)
# (the run's best: kernels.c prints the peak again at its end)
peak=$([ -n "$widest" ] && [ -f "$dir/kernels.tsv" ] &&
	awk -F'\t' -v w="FMA peak $widest" '$1 == w && $4 > p { p = $4 } END { if (p > 0) print p }' "$dir/kernels.tsv" || true)
for k in 64 128; do
	gflops=$([ -n "$widest" ] && pick kernels.tsv "\$1 == \"gram $widest\" && \$2 == $k" 4 || true)
	share=$(ratio "$gflops" "$peak")
	row "Gram kernel ($widest, one thread), k = $k, ≥ 60% of the measured FMA peak" "$share" \
		"$(awk -v s="$share" 'BEGIN { printf "%.1f%%", 100 * s }') ($gflops of $peak GFLOP/s)" ">=" 0.60
done

# the kernel paths at the ML-10M shape, k = 64, all cores
avx2=$(pick kernel_paths.tsv '$1 == "ml-10m" && $2 == "avx2" && $3 == "cholesky"' 4)
avx2_probe=$(pick kernel_paths.tsv '$1 == "ml-10m" && $2 == "avx2" && $3 == "cholesky"' 5)
r=$(ratio "$avx2" "$avx2_probe")
row "AVX2 path alone (Cholesky, ML-10M, k = 64) ≤ 0.6× the probe" "$r" "$(r3 "$r")×" "<=" 0.6
for solver in cg implicit-cg; do
	cg=$(pick kernel_paths.tsv "\$1 == \"ml-10m\" && \$2 == \"auto\" && \$3 == \"$solver\"" 4)
	blas_cg=$(pick kernel_paths.tsv "\$1 == \"ml-10m\" && \$2 == \"blas\" && \$3 == \"$solver\"" 4)
	r=$(ratio "$cg" "$blas_cg")
	what=$([ "$solver" = cg ] && echo "CG iteration" || echo "implicit CG iteration")
	row "$what (ML-10M, k = 64) ≤ 0.5× 0.4's (the \`blas\` path's)" "$r" "$(r3 "$r")× ($(r3 "$cg") s against $(r3 "$blas_cg") s)" "<=" 0.5
done

# store, load and memory
store=$(pick results.tsv "\$1 == \"ml-10m\" && \$5 == 64 && \$6 == $threads" 14)
row "store ≤ 0.3 s (ML-10M, k = 64)" "$store" "$(r3 "$store") s" "<=" 0.3
for order in user random; do
	limit=$([ "$order" = user ] && echo 1.15 || echo 1.3)
	for shape in ml-10m netflix; do
		load=$(pick load.tsv "\$1 == \"$shape\" && \$2 == \"$order\"" 3)
		scan=$(pick load.tsv "\$1 == \"$shape\" && \$2 == \"$order\"" 4)
		[ "$shape" = netflix ] && [ -z "$load" ] && continue
		r=$(ratio "$load" "$scan")
		row "load ≤ ${limit}× the scan ($shape, rows in $order order)" "$r" "$(r3 "$r")× ($(r3 "$load") s against $(r3 "$scan") s)" "<=" "$limit"
	done
done
worst=$(awk -F'\t' 'NR > 1 && $1 != "ml-latest-small" { r = $12 / $13; if (r > w) { w = r; at = $1 ", k = " $5 } }
	END { if (at != "") printf "%.6f\t%s", w, at }' "$dir/results.tsv")
row "peak training memory ≤ 24 B a rating + the factors (ML-1M, ML-10M)" "${worst%%$'\t'*}" \
	"at most $(r3 "${worst%%$'\t'*}")× the budget (${worst#*$'\t'})" "<=" 1

# serving and cancel
rec=$(pick serving.tsv '$1 == "ml-10m"' 4)
row "\`mf_recommend\` top-10 over 10,677 items ≤ 0.15 ms (median)" "$rec" "$(r3 "$rec") ms" "<=" 0.15
join=$(pick serving.tsv '$1 == "ml-10m"' 2)
sum=$(pick serving.tsv '$1 == "ml-10m"' 3)
r=$(ratio "$join" "$sum")
row "predict join ≤ 1.5× \`sum(rating)\` (ML-10M)" "$r" "$(r3 "$r")× ($(r3 "$join") s against $(r3 "$sum") s)" "<=" 1.5
back=$([ -f "$dir/cancel.tsv" ] && awk -F'\t' '$3 > m { m = $3 } END { if (NR) print m + 0 }' "$dir/cancel.tsv" || true)
row "cancel back within 0.1 s" "$back" "$(r3 "$back") s at most" "<=" 0.1
echo
echo "The peers' targets are measured by \`make bench-peers\`, not in this run."
