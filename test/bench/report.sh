#!/usr/bin/env bash
# Prints the benchmark results in DIR as Markdown tables (with the ratios the
# targets are stated in) and draws DIR/iteration.svg, copied to test/bench/.
set -euo pipefail
dir=$1
here=$(cd "$(dirname "$0")" && pwd)

# budget: 24 bytes a rating plus the factors in single precision
echo "| shape | ratings | users | items | k | threads | load s | load ÷ scan | s / iteration | ÷ probe | GFLOP/s | store s | peak MB | budget MB | peak B / rating |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' 'NR > 1 {
	printf "| %s | %d | %d | %d | %d | %d | %.2f | %.2f | %.3f | %.2f | %.1f | %.2f | %d | %d | %.1f |\n",
		$1, $2, $3, $4, $5, $6, $7, $7 / $8, $9, $9 / $10, $11, $14, $12 / 1048576, $13 / 1048576, $12 / $2
}' "$dir/results.tsv"
if [ -f "$dir/load.tsv" ]; then
	echo
	echo "| shape | rows stored in | load s | scan s | load ÷ scan |"
	echo "|---|---|---:|---:|---:|"
	awk -F'\t' '{ printf "| %s | %s order | %.3f | %.3f | %.2f |\n", $1, $2, $3, $4, $3 / $4 }' "$dir/load.tsv"
fi

if [ -f "$dir/serving.tsv" ]; then
	echo
	echo "| shape | predict join s | sum(rating) s | ratio | mf_recommend top-10 median ms | among 1,000 candidates less 10, ms | mf_recommend_users top-10 median ms |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	awk -F'\t' '{ printf "| %s | %.3f | %.3f | %.2f | %.3f | %.3f | %.1f |\n", $1, $2, $3, $2 / $3, $4, $5, $6 }' "$dir/serving.tsv"
fi
if [ -f "$dir/cancel.tsv" ]; then
	echo
	echo "| shape | cancelled after s | back after s |"
	echo "|---|---:|---:|"
	awk -F'\t' '{ printf "| %s | %.1f | %.3f |\n", $1, $2, $3 }' "$dir/cancel.tsv"
fi

if [ -f "$dir/kernel_paths.tsv" ]; then
	echo
	echo "| shape | kernel | solver | s / iteration (k = 64, all cores) | ÷ probe | ÷ blas path |"
	echo "|---|---|---|---:|---:|---:|"
	awk -F'\t' '{ key = $1 " " $3; s[NR] = $0; if ($2 == "blas") blas[key] = $4 }
		END { for (i = 1; i <= NR; i++) { split(s[i], f, "\t"); key = f[1] " " f[3];
			probe = f[3] ~ /^implicit/ ? "-" : sprintf("%.2f", f[4] / f[5]);	# the probe is explicit
			printf "| %s | %s | %s | %.4f | %s | %.2f |\n", f[1], f[2], f[3], f[4], probe, f[4] / blas[key] } }' \
		"$dir/kernel_paths.tsv"
fi
if [ -f "$dir/kernels.tsv" ]; then
	echo
	echo "| kernel (one thread, rows of 143 ratings) | k | ns per row | GFLOP/s | share of the measured FMA peak | ÷ OpenBLAS |"
	echo "|---|---:|---:|---:|---:|---:|"
	awk -F'\t' 'NR > 1 { r = $6; if (match(r, /[0-9.]+/)) r = substr(r, RSTART, RLENGTH); if ($6 ~ /batched/) r = r " (÷ batched)"; printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, r == "" ? "1" : r }' \
		"$dir/kernels.tsv"
	# GFLOP/s of the Gram kernels against k, with the peaks
	awk -F'\t' 'NR > 1 && $1 ~ /^gram/ { name = $1; sub(/^gram /, "", name); sub(/ .*/, "", name); print name, $2, $4 }' \
		"$dir/kernels.tsv" > "$dir/gram.dat"
	peak=$(awk -F'\t' '$1 == "FMA peak avx512" || $1 == "FMA peak avx2" { if ($4 > p) p = $4 } END { print p + 0 }' "$dir/kernels.tsv")
	gnuplot <<GNUPLOT
set terminal svg size 720,420 font 'sans,12'
set output '$dir/kernels.svg'
set title 'Gram matrix + right-hand side of a row, one thread (GFLOP/s)'
set xlabel 'k'
set ylabel 'GFLOP/s'
set key top left
set grid
set yrange [0:*]
plot for [name in "avx512 avx2 portable openblas"] '< grep "^'.name.' " $dir/gram.dat' using 2:3 with linespoints title name, \
     $peak with lines dashtype 2 title 'measured FMA peak'
GNUPLOT
	cp "$dir/kernels.svg" "$here/kernels.svg"
fi

# seconds per iteration vs k, ours and the probe, all cores, per shape; a
# run of the netflix shape alone (loading only) has no iterations to draw
if [ "$(awk 'END { print NR }' "$dir/results.tsv")" -le 1 ]; then
	exit 0
fi
threads=$(awk -F'\t' 'NR > 1 && $6 > max { max = $6 } END { print max }' "$dir/results.tsv")
plot=""
for shape in $(awk -F'\t' 'NR > 1 { print $1 }' "$dir/results.tsv" | uniq); do
	awk -F'\t' -v s="$shape" -v t="$threads" '$1 == s && $6 == t { print $5, $9, $10 }' \
		"$dir/results.tsv" > "$dir/plot-$shape.dat"
	plot="$plot '$dir/plot-$shape.dat' using 1:2 with linespoints title '$shape mf\\_train',"
	plot="$plot '$dir/plot-$shape.dat' using 1:3 with linespoints dashtype 2 title '$shape probe',"
done
gnuplot <<GNUPLOT
set terminal svg size 720,420 font 'sans,12'
set output '$dir/iteration.svg'
set title 'Seconds per ALS iteration, $threads threads: mf\\_train vs the BLAS probe'
set xlabel 'k'
set ylabel 'seconds per iteration'
set logscale y
set key top left
set grid
plot ${plot%,}
GNUPLOT
cp "$dir/iteration.svg" "$here/iteration.svg"
