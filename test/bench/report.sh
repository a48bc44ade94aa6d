#!/usr/bin/env bash
# Prints the benchmark results in DIR as Markdown tables (with the ratios the
# targets are stated in) and draws DIR/iteration.svg, copied to test/bench/.
set -euo pipefail
dir=$1
here=$(cd "$(dirname "$0")" && pwd)

echo "| shape | ratings | users | items | k | threads | load s | load ÷ scan | s / iteration | ÷ probe | GFLOP/s | peak MB | budget MB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' 'NR > 1 {
	printf "| %s | %d | %d | %d | %d | %d | %.2f | %.2f | %.3f | %.2f | %.1f | %d | %d |\n",
		$1, $2, $3, $4, $5, $6, $7, $7 / $8, $9, $9 / $10, $11, $12 / 1048576, $13 / 1048576
}' "$dir/results.tsv"

if [ -f "$dir/serving.tsv" ]; then
	echo
	echo "| shape | predict join s | sum(rating) s | ratio | mf_recommend top-10 median ms |"
	echo "|---|---:|---:|---:|---:|"
	awk -F'\t' '{ printf "| %s | %.3f | %.3f | %.2f | %.3f |\n", $1, $2, $3, $2 / $3, $4 }' "$dir/serving.tsv"
fi
if [ -f "$dir/cancel.tsv" ]; then
	echo
	echo "| shape | cancelled after s | back after s |"
	echo "|---|---:|---:|"
	awk -F'\t' '{ printf "| %s | %.1f | %.3f |\n", $1, $2, $3 }' "$dir/cancel.tsv"
fi

# seconds per iteration vs k, ours and the probe, all cores, per shape
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
