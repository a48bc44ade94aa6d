#!/usr/bin/env bash
# The benchmark proper; run by test/bench/run.sh inside a throw-away cluster
# (PG* variables set).  Arguments: output directory, probe binary, rss_peak
# binary.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1
probe=$2
rss_peak=$3
threads_all=$(nproc)
iterations=${MF_BENCH_ITERATIONS:-3}
rounds=${MF_BENCH_ROUNDS:-3}	# of the kernel paths' rows
ks=${MF_BENCH_KS:-"10 32 64 128"}
shapes=${MF_BENCH_SHAPES:-"ml-latest-small ml-1m ml-10m"}
data_dir="$here/../../../shared/data"

psql_q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }

psql_q -c "CREATE EXTENSION IF NOT EXISTS mf_ext" -f "$here/functions.sql" >/dev/null

# Largest RssAnon (bytes) of the backend whose pid is the first line of
# FILE, sampled every 10 ms (test/bench/rss_peak.c) until it ends, while the
# shell job SESSION runs.
sample_peak_rss() {
	local session=$1 file=$2 pid=""
	while [ -z "$pid" ] && kill -0 "$session" 2>/dev/null; do
		pid=$(head -n 1 "$file" 2>/dev/null | grep -E '^[0-9]+$' || true)
		sleep 0.005
	done
	if [ -n "$pid" ]; then "$rss_peak" "$pid"; else echo 0; fi
}

# Starts a training of TABLE at k K afresh for each of DELAYS (seconds),
# cancels it after that long, and records in cancel.tsv, under SHAPE, how
# long the cancel took to end it (bench_cancel_seconds).
measure_cancels() {
	local shape=$1 table=$2 k=$3 delays=$4 delay latency
	for delay in $delays; do
		psql_q -c "SET mf_ext.max_memory = '20GB'" \
			-c "SELECT mf_train('$table', k := $k, iterations := 1000, model_name := 'cancel')" \
			>/dev/null 2>&1 &
		sleep "$delay"
		latency=$(psql_q -c "SELECT round(bench_cancel_seconds()::numeric, 3)")
		wait || true
		printf '%s\t%s\t%s\n' "$shape" "$delay" "$latency" >> "$out/cancel.tsv"
		echo "   cancel after ${delay}s: back in ${latency}s"
	done
}

# The median of FILE's third column over its lines whose first two are
# WHAT and HOW (the lower middle of an even count); nothing when none is.
round_median() {
	awk -F'\t' -v what="$2" -v how="$3" '$1 == what && $2 == how { print $3 }' "$1" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}

# RssAnon of a backend that has only started.
idle_rss=$(psql_q -c "SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'RssAnon:\s+(\d+) kB'))[1]::bigint * 1024")
echo "idle backend RssAnon: $((idle_rss / 1024)) kB"

results="$out/results.tsv"
printf 'shape\tratings\tusers\titems\tk\tthreads\tload_s\tscan_s\titeration_s\tprobe_s\tgflops\tpeak_bytes\tbudget_bytes\tstore_s\n' > "$results"

for shape in $shapes; do
	table="bench_${shape//-/_}"
	case $shape in
	ml-latest-small)
		file="$data_dir/ml-latest-small.tsv.xz"
		if [ ! -f "$file" ]; then
			echo "== $shape: $file not present, skipped"
			continue
		fi
		psql_q -c "DROP TABLE IF EXISTS $table; CREATE TABLE $table (user_id integer, item_id integer, rating real, ts bigint)"
		xz -dc "$file" | psql_q -c "\\copy $table FROM STDIN" ;;
	ml-1m)
		psql_q -v table="$table" -v n_ratings=1000209 -v n_users=6040 -v n_items=3706 -v seed=1 -f "$here/generate.sql" ;;
	ml-10m)
		psql_q -v table="$table" -v n_ratings=10000054 -v n_users=69878 -v n_items=10677 -v seed=10 -f "$here/generate.sql" ;;
	netflix)
		# 100M ratings in random order: loading only (not in the default list)
		psql_q -v table="$table" -v n_ratings=100480507 -v n_users=480189 -v n_items=17770 \
			-f "$here/generate_netflix.sql" ;;
	text-keys)
		continue ;;	# the cancel measured at the end
	*)
		echo "unknown shape $shape" >&2; exit 2 ;;
	esac
	psql_q -c "VACUUM ANALYZE $table"
	read -r n_ratings n_users n_items < <(psql_q -F ' ' -c "SELECT count(*), count(DISTINCT user_id), count(DISTINCT item_id) FROM $table")
	echo "== $shape: $n_ratings ratings, $n_users users, $n_items items"

	psql_q -c "\\copy (SELECT count(*) FROM $table GROUP BY user_id) TO '$out/$shape.users'"
	psql_q -c "\\copy (SELECT count(*) FROM $table GROUP BY item_id) TO '$out/$shape.items'"
	# A plain scan as the first statement of a fresh session (the median of
	# three sessions), as each training below reads the table: a session's
	# first touch of each shared buffer costs a page fault.
	scan=$(for session in 1 2 3; do
		psql_q -c "SET max_parallel_workers_per_gather = 0" \
			-c "SELECT bench_seconds('SELECT count(user_id), count(item_id), sum(rating) FROM $table', 1)"
	done | sort -g | sed -n 2p)

	for k in $ks; do
		if [ "$shape" = netflix ]; then break; fi
		for threads in 1 "$threads_all"; do
			# The training session prints its pid first; meanwhile its
			# private memory (RssAnon) is sampled from /proc every 10 ms
			# by a C loop (a shell loop's forks had slowed the training).
			# Storing the model (and committing it) is the call's wall
			# time after train_seconds.
			psql_q -F $'\t' > "$out/train.out" <<-SQL &
				SET client_min_messages = warning;
				SELECT pg_backend_pid();
				SET mf_ext.threads = $threads;
				SET mf_ext.max_memory = '20GB';
				SELECT clock_timestamp() AS started \gset
				SELECT mf_train('$table', k := $k, iterations := $iterations, model_name := 'bench') AS model \gset
				SELECT round(load_seconds::numeric, 3),
				       round((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s) FROM unnest(iteration_seconds) s)::numeric, 3),
				       round((extract(epoch FROM clock_timestamp() - :'started') - train_seconds)::numeric, 3)
				FROM mf_models WHERE model_id = :model;
			SQL
			session=$!
			peak=$(sample_peak_rss "$session" "$out/train.out")
			wait "$session"
			row=$(tail -n 1 "$out/train.out")
			read -r load iteration store <<< "$row"
			peak=$((peak - idle_rss))
			probe_s=$("$probe" "$out/$shape.users" "$out/$shape.items" "$k" "$threads" "$iterations")
			stats=$(awk -v nnz="$n_ratings" -v m="$n_users" -v n="$n_items" -v k="$k" -v it="$iteration" '
				BEGIN { flops = 2 * nnz * k * (k + 1) + (m + n) * k * k * k / 3;
				        printf "%.1f\t%d", flops / it / 1e9, 24 * nnz + 4 * k * (m + n) }')
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$shape" "$n_ratings" "$n_users" "$n_items" \
				"$k" "$threads" "$load" "$scan" "$iteration" "$probe_s" "$stats" | \
				awk -F'\t' -v peak="$peak" -v store="$store" 'BEGIN{OFS="\t"} {print $1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,peak,$12,store}' >> "$results"
			echo "   k=$k threads=$threads: load ${load}s (scan ${scan}s), iteration ${iteration}s (probe ${probe_s}s), store ${store}s, peak $((peak / 1048576)) MB"
		done
	done

	# Loading whatever order the rows are stored in: the table as generated
	# (user order) and a copy in random order, each read by a k = 10
	# training of one iteration, against a plain scan in the same session
	# (after a first scan there: both find the shared buffers mapped).
	if [ "$shape" != "ml-latest-small" ]; then
		orders="user random"
		if [ "$shape" = netflix ]; then
			orders=random	# generated in random order
		else
			psql_q -c "DROP TABLE IF EXISTS ${table}_random" \
				-c "CREATE TABLE ${table}_random AS SELECT * FROM $table ORDER BY hashint8(user_id::bigint * 1000003 + item_id)" \
				-c "VACUUM ANALYZE ${table}_random"
		fi
		for order in $orders; do
			source=${table}_random
			if [ "$order" = user ] || [ "$shape" = netflix ]; then source=$table; fi
			read -r load_order scan_order < <(psql_q -F ' ' <<-SQL
				SET client_min_messages = warning;
				SET max_parallel_workers_per_gather = 0;
				SET mf_ext.max_memory = '20GB';
				SELECT count(user_id), count(item_id), sum(rating) FROM $source \gset first_
				SELECT round(bench_seconds('SELECT count(user_id), count(item_id), sum(rating) FROM $source')::numeric, 3) AS scan \gset
				SELECT mf_train('$source', k := 10, iterations := 1, model_name := 'bench_load') AS model \gset
				SELECT round(load_seconds::numeric, 3), :scan FROM mf_models WHERE model_id = :model;
			SQL
			)
			printf '%s\t%s\t%s\t%s\n' "$shape" "$order" "$load_order" "$scan_order" >> "$out/load.tsv"
			echo "   rows in $order order: load ${load_order}s, scan ${scan_order}s"
		done
		psql_q -c "DROP TABLE IF EXISTS ${table}_random" -c "SELECT mf_drop_model('bench_load')" >/dev/null
	fi
	if [ "$shape" = netflix ]; then
		psql_q -c "DROP TABLE $table"
		continue
	fi

	# The kernel paths side by side at k = 64 on all cores: seconds per
	# iteration of the exact (Cholesky) and CG solvers with each kernel the
	# CPU runs and with OpenBLAS's path, and the probe's; and implicit
	# feedback's CG (the ratings read as strengths) by `auto` and `blas`.
	# In $rounds interleaved rounds (the probe once a round, then each path
	# in turn), each row the median of its rounds: one path measured once
	# swung by a third against another within a run.  The portable kernel,
	# in no target and ten times slower, runs in the first round only.
	if [ "$shape" != "ml-latest-small" ]; then
		rounds_file="$out/kernel_rounds.tsv"
		: > "$rounds_file"
		for round in $(seq 1 "$rounds"); do
			probe_64=$("$probe" "$out/$shape.users" "$out/$shape.items" 64 "$threads_all" "$iterations")
			printf 'probe\t-\t%s\n' "$probe_64" >> "$rounds_file"
			for kernel in auto avx512 avx2 portable blas; do
				if [ "$kernel" = portable ] && [ "$round" -gt 1 ]; then continue; fi
				solvers="cholesky cg"
				case $kernel in auto | blas) solvers="$solvers implicit-cg" ;; esac
				for solver in $solvers; do
					feedback=explicit
					if [ "$solver" = implicit-cg ]; then feedback=implicit; fi
					seconds=$(psql_q -F $'\t' 2>/dev/null <<-SQL || true
						SET client_min_messages = warning;
						SET mf_ext.kernel = $kernel;
						SET mf_ext.threads = $threads_all;
						SET mf_ext.max_memory = '20GB';
						SELECT mf_train('$table', k := 64, iterations := $iterations, solver := '${solver#implicit-}',
						                feedback := '$feedback', model_name := 'bench_kernel') AS model \gset
						SELECT round((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s) FROM unnest(iteration_seconds) s)::numeric, 4)
						FROM mf_models WHERE model_id = :model;
					SQL
					)
					if [ -z "$seconds" ]; then
						continue	# an instruction set this CPU does not run
					fi
					printf '%s\t%s\t%s\n' "$kernel" "$solver" "$seconds" >> "$rounds_file"
					echo "   round $round, k=64 $kernel $solver: ${seconds}s per iteration (probe ${probe_64}s)"
				done
			done
		done
		# each path's median over its rounds, beside the probe's
		probe_64=$(round_median "$rounds_file" probe -)
		for kernel in auto avx512 avx2 portable blas; do
			for solver in cholesky cg implicit-cg; do
				seconds=$(round_median "$rounds_file" "$kernel" "$solver")
				if [ -n "$seconds" ]; then
					printf '%s\t%s\t%s\t%s\t%s\n' "$shape" "$kernel" "$solver" "$seconds" "$probe_64" >> "$out/kernel_paths.tsv"
					echo "   k=64 $kernel $solver: ${seconds}s per iteration, the median of its rounds (probe ${probe_64}s)"
				fi
			done
		done
		rm -f "$rounds_file"
	fi

	# Serving, with the k = 64 model (all threads).
	if [ "$shape" != "ml-latest-small" ]; then
		serving=$(psql_q -F $'\t' <<-SQL
			SET client_min_messages = warning;
			SET max_parallel_workers_per_gather = 0;
			SELECT mf_train('$table', k := 64, iterations := 1, model_name := 'serve') AS model \gset
			SELECT sum(mf_predict(:model, user_id, item_id)) FROM $table \gset warm_
			SELECT round(bench_seconds('SELECT sum(mf_predict(' || :model || ', user_id, item_id)) FROM $table')::numeric, 3),
			       round(bench_seconds('SELECT sum(rating) FROM $table')::numeric, 3),
			       round(bench_serving_ms(:model, 'recommend')::numeric, 4),
			       round(bench_serving_ms(:model, 'candidates')::numeric, 4),
			       round(bench_serving_ms(:model, 'users', 20)::numeric, 4);
		SQL
		)
		printf '%s\t%s\n' "$shape" "$serving" >> "$out/serving.tsv"
		echo "   serving: $serving (predict join s, sum(rating) s, median ms of mf_recommend, of it among 1,000 candidates less 10, of mf_recommend_users)"

		# Cancel a k = 64 training after 1, 3 and 8 s: reading, indexing or iterating.
		measure_cancels "$shape" "$table" 64 "1 3 8"
	fi
done

# Cancel while 5M distinct text keys are read, after 1 to 5 s: the key maps'
# hash tables grow to 8M entries meanwhile (a growth zeroed its table in one
# step, and a cancel came up to 0.43 s late, psql's overhead subtracted).
if [ -z "${MF_BENCH_SHAPES:-}" ] || [[ " $shapes " == *" text-keys "* ]]; then
	psql_q -c "DROP TABLE IF EXISTS bench_text_keys" \
		-c "CREATE TABLE bench_text_keys AS SELECT md5(g::text) AS user_id, g % 50 AS item_id, 1 + g % 5 AS rating FROM generate_series(1, 5000000) g" \
		-c "VACUUM ANALYZE bench_text_keys"
	echo "== text-keys: 5,000,000 ratings of 5,000,000 text-keyed users"
	measure_cancels text-keys bench_text_keys 1 "1 2 3 4 5"
	psql_q -c "DROP TABLE bench_text_keys"
fi
