#!/usr/bin/env bash
# `make bench-batch` (also run by `make bench`): mf_recommend_all at the
# MovieLens 10M shape (69,878 users, 10,677 items, k = 64, top 10, rated
# items left out; median of 3 runs after VACUUM ANALYZE and CHECKPOINT,
# warm (the session has loaded the model) and cold (a new session, which
# loads it first)) against the floor of its matrix products alone
# (test/bench/gemm_probe.c, the same blocks on the same threads); then,
# warm, the nightly job's refresh (mode 'replace' into the existing table
# with a primary key, its old rows deleted in the same transaction), the
# rows returned by mf_recommend_all_rows, and mf_recommend_users_all (every
# item's top 10 users into a new table).  Writes test/bench/batch.tsv.  Knob: MF_BENCH_BATCH_SHAPE=ml-1m for a quick run.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash test/build.sh
out=$(mktemp -d /tmp/mf_ext-batch.XXXXXX)
chmod 755 "$out"
gcc -O2 -std=gnu11 -I/usr/include/x86_64-linux-gnu/openblas-pthread \
	-o "$out/gemm_probe" test/bench/gemm_probe.c -lopenblas -lpthread
export OPENBLAS_NUM_THREADS=1
case "${MF_BENCH_BATCH_SHAPE:-ml-10m}" in
	ml-1m) shape=ml-1m; sizes="-v n_ratings=1000209 -v n_users=6040 -v n_items=3706 -v seed=1" ;;
	*) shape=ml-10m; sizes="-v n_ratings=10000054 -v n_users=69878 -v n_items=10677 -v seed=10" ;;
esac
threads=$(nproc)
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $threads cores, $(free -g | awk '/Mem:/ {print $2}') GiB"
pg_virtualenv -o shared_buffers=256MB sh -c "
	set -e
	psql -X -q -c 'CREATE EXTENSION mf_ext'
	psql -X -q -v table=ratings $sizes -f test/bench/generate.sql
	psql -X -q -At -c \"SET client_min_messages = warning\" \
		-c \"SELECT mf_train('ratings', k := 64, iterations := 1)\" > /dev/null
	psql -X -q -At -c \"SELECT n_users, n_items FROM mf_models\" | tr '|' ' ' > '$out/shape'
	# settle the fresh tables (hint bits, autovacuum) before timing
	psql -X -q -c 'VACUUM ANALYZE' -c 'CHECKPOINT'
	for run in 1 2 3; do
		# cold: a new session, which loads the model first
		psql -X -q -c 'DROP TABLE IF EXISTS top10'
		psql -X -q -At -c \"SET client_min_messages = warning\" -c '\\timing on' \
			-c \"SELECT mf_recommend_all('ratings', 10, true, 'top10')\" >> '$out/cold'
		# warm: the session has the model loaded (by an mf_predict call)
		psql -X -q -c 'DROP TABLE IF EXISTS top10'
		psql -X -q -At -c \"SET client_min_messages = warning\" \
			-c \"SELECT mf_predict('ratings', 1, 1)\" -c '\\timing on' \
			-c \"SELECT mf_recommend_all('ratings', 10, true, 'top10')\" >> '$out/warm'
	done
	psql -X -q -At -c 'SELECT count(*), count(DISTINCT user_id) FROM top10' > '$out/rows'
	psql -X -q -c 'ALTER TABLE top10 ADD PRIMARY KEY (user_id, rank)'
	for run in 1 2 3; do
		psql -X -q -c 'DROP TABLE IF EXISTS fans10'
		psql -X -q -At -c \"SET client_min_messages = warning\" \
			-c \"SELECT mf_predict('ratings', 1, 1)\" -c '\\timing on' \
			-c \"SELECT mf_recommend_all('ratings', 10, true, 'top10', 'replace')\" \
			-c \"SELECT count(*) FROM mf_recommend_all_rows('ratings', 10)\" \
			-c \"SELECT mf_recommend_users_all('ratings', 10, true, 'fans10')\" >> '$out/replace'
	done"
read -r n_users n_items < "$out/shape"
# the medians of three runs each
cold=$(awk '/^Time:/ {print $2 / 1000}' "$out/cold" | sort -n | sed -n 2p)
warm=$(awk '/^Time:/ {print $2 / 1000}' "$out/warm" | sort -n | sed -n 2p)
# the median of three probe runs
floor=$(for run in 1 2 3; do "$out/gemm_probe" "$n_users" "$n_items" 64 "$threads"; done | sort -n | sed -n 2p)
# one psql run times three statements: the first, second and third Time of each
timed() { awk -v n="$2" '/^Time:/ { if (++seen % 3 == n) print $2 / 1000 }' "$1" | sort -n | sed -n 2p; }
replace=$(timed "$out/replace" 1)
rows_form=$(timed "$out/replace" 2)
users_all=$(timed "$out/replace" 0)
rows=$(cut -d'|' -f1 "$out/rows")
printf 'shape\tusers\titems\tk\tthreads\trows\twarm_s\tcold_s\tgemm_floor_s\twarm_ratio\tcold_ratio\treplace_s\trows_form_s\tusers_all_s\n' > "$out/batch.tsv"
awk -v s="$shape" -v u="$n_users" -v i="$n_items" -v t="$threads" -v r="$rows" \
	-v w="$warm" -v c="$cold" -v f="$floor" -v rp="$replace" -v rf="$rows_form" -v ua="$users_all" \
	'BEGIN { printf "%s\t%s\t%s\t64\t%s\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\n", s, u, i, t, r, w, c, f, w / f, c / f, rp, rf, ua }' >> "$out/batch.tsv"
column -t -s "$(printf '\t')" "$out/batch.tsv"
cp "$out/batch.tsv" test/bench/batch.tsv
