#!/usr/bin/env bash
# The side-by-side benchmark proper; run by test/bench/peers.sh inside a
# throw-away cluster (pg_virtualenv: PG* variables set).  Arguments: the
# output directory (the peers' build is in OUT/build) and the data directory.
#
# Prepares each data set's split in the cluster (prepare.sql) and exports it
# as TSV for the peers, then runs interleaved rounds: in every round every
# system trains once on that data set (the order rotated from round to
# round), mf_ext in a fresh connection (mf_ext_run.sql), each peer as its own
# process under /usr/bin/time -v (peak RSS).  Appends one row per run to
# OUT/rounds.tsv.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1
data_dir=$2
build="$out/build"
rounds=${MF_PEERS_ROUNDS:-3}
k=${MF_PEERS_K:-64}
# Iterations of every ALS system: 10, and 5 at the ML-10M shape to keep the
# whole run near 15 minutes on 2 cores (seconds per iteration are reported).
iterations_small=${MF_PEERS_ITERATIONS:-10}
iterations_10m=${MF_PEERS_ITERATIONS_10M:-5}
libmf_epochs=${MF_PEERS_LIBMF_EPOCHS:-20}  # LIBMF's usual count
threads=${MF_PEERS_THREADS:-2}
datasets=${MF_PEERS_DATASETS:-"ml-latest-small ml-10m lastfm-2k"}
# mf_ext's lambda for star ratings (README: biases, lambda around 10) and for
# implicit feedback (test/bench/implicit.sql: lambda 50, alpha 10); cmfrec
# and implicit get the same numbers with the same meaning (see the drivers);
# LIBMF gets the l2 it was run with in ../shared/vendor/SOURCES.md.
explicit_lambda=10
implicit_lambda=50
implicit_alpha=10
libmf_l2=0.05
split_seed=42
clk_tck=$(getconf CLK_TCK)

psql_q() { psql -X -q -v ON_ERROR_STOP=1 -At "$@"; }
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
psql_q -c "CREATE EXTENSION IF NOT EXISTS mf_ext"

rows="$out/rounds.tsv"
printf 'data\tround\tsystem\tsolver\titerations\twall_s\tcpu_s\ts_per_iteration\tload_s\tmetric_name\tmetric\tpeak_kb\n' > "$rows"

# Loads data set $1 into table peers_src (user_id, item_id, rating), splits
# it and exports the split as $out/$1.train.tsv and $out/$1.test.tsv.
prepare() {
	local data=$1 name=${1//-/_} started=$SECONDS
	psql_q -c "DROP TABLE IF EXISTS peers_src"
	case $data in
	ml-latest-small)
		psql_q -c "CREATE TABLE peers_src (user_id integer, item_id integer, rating real, ts bigint)"
		xz -dc "$data_dir/ml-latest-small.tsv.xz" | psql_q -c "\\copy peers_src FROM STDIN" ;;
	ml-10m)
		# The ML-10M shape of `make bench-speed` (test/bench/bench.sh).
		psql_q -v table=peers_src -v n_ratings=10000054 -v n_users=69878 -v n_items=10677 \
			-v seed=10 -f "$here/../generate.sql" ;;
	lastfm-2k)
		# Play counts, read as strength ln(1 + plays) by every system (Hu,
		# Koren and Volinsky's log scaling): a pair's confidence is then
		# 1 + alpha * ln(1 + plays).
		psql_q -c "CREATE TABLE peers_src (user_id integer, item_id integer, plays bigint)"
		xz -dc "$data_dir/lastfm-2k.tsv.xz" | psql_q -c "\\copy peers_src FROM STDIN"
		psql_q -c "ALTER TABLE peers_src ADD COLUMN rating real" \
			-c "UPDATE peers_src SET rating = ln(1 + plays)" ;;
	*)
		echo "rounds.sh: unknown data set $data" >&2; exit 2 ;;
	esac
	psql_q -v src=peers_src -v name="$name" -v fraction=0.1 -v seed="$split_seed" -f "$here/prepare.sql"
	psql_q -c "\\copy ${name}_train TO '$out/$data.train.tsv'"
	psql_q -c "\\copy ${name}_test TO '$out/$data.test.tsv'"
	psql_q -c "DROP TABLE peers_src"
	read -r n_train n_test n_users n_items < <(psql_q -F ' ' -c \
		"SELECT (SELECT count(*) FROM ${name}_train), (SELECT count(*) FROM ${name}_test),
		        (SELECT count(DISTINCT user_id) FROM ${name}_train), (SELECT count(DISTINCT item_id) FROM ${name}_train)")
	echo "== $data: $n_train training rows, $n_test held out (seed $split_seed), $n_users users," \
		"$n_items items (prepared in $((SECONDS - started)) s)"
}

# mf_ext on data set $1 with solver $2 (fresh connection).
run_mf_ext() {
	local data=$1 solver=$2 name=${1//-/_} feedback lambda biases line
	local wall cpu per_iteration load metric peak_kb
	if [ "$data" = lastfm-2k ]; then
		feedback=implicit lambda=$implicit_lambda biases=false
	else
		feedback=explicit lambda=$explicit_lambda biases=true
	fi
	line=$(psql -X -q -v ON_ERROR_STOP=1 -At -F $'\t' -v train="${name}_train" -v test="${name}_test" \
		-v k="$k" -v lambda="$lambda" -v iterations="$iterations" -v biases="$biases" \
		-v feedback="$feedback" -v alpha="$implicit_alpha" -v solver="$solver" \
		-v threads="$threads" -v clk_tck="$clk_tck" -f "$here/mf_ext_run.sql" | tail -n 1)
	IFS=$'\t' read -r wall cpu per_iteration load metric peak_kb <<< "$line"
	psql_q -c "VACUUM mf_user_factors, mf_item_factors"
	record "$data" mf_ext "$solver" "$iterations" "$wall" "$cpu" "$per_iteration" "$load" "$metric" "$peak_kb"
}

# A peer: run_peer DATA SYSTEM SOLVER ITERATIONS COMMAND...; the command
# prints "wall<TAB>cpu<TAB>metric" of its fit.
run_peer() {
	local data=$1 system=$2 solver=$3 its=$4 line peak_kb wall cpu metric per_iteration
	shift 4
	line=$(/usr/bin/time -v -o "$out/time.txt" "$@" | tail -n 1)
	peak_kb=$(sed -n 's/^\s*Maximum resident set size (kbytes): //p' "$out/time.txt")
	IFS=$'\t' read -r wall cpu metric <<< "$line"
	per_iteration=$(awk -v w="$wall" -v n="$its" 'BEGIN { printf "%.4f", w / n }')
	record "$data" "$system" "$solver" "$its" "$wall" "$cpu" "$per_iteration" "" "$metric" "$peak_kb"
}

# record DATA SYSTEM SOLVER ITERATIONS WALL CPU S_PER_ITERATION LOAD METRIC PEAK_KB,
# in round $round.
record() {
	local data=$1 system=$2 solver=$3 its=$4 wall=$5 cpu=$6 per_iteration=$7 load=$8 metric=$9 peak_kb=${10}
	local metric_name=rmse
	if [ "$data" = lastfm-2k ]; then metric_name=precision@10; fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$data" "$round" "$system" "$solver" \
		"$its" "$wall" "$cpu" "$per_iteration" "$load" "$metric_name" "$metric" "$peak_kb" >> "$rows"
	printf '   round %s  %-8s %-9s wall %8.2f s  CPU %8.2f s  %s %s  peak %6d MB\n' "$round" "$system" \
		"$solver" "$wall" "$cpu" "$metric_name" "$metric" $((peak_kb / 1024))
}

# Runs system $2 ("SYSTEM:SOLVER") on data set $1.
run_system() {
	local data=$1 system=${2%%:*} solver=${2#*:}
	local train="$out/$data.train.tsv" test="$out/$data.test.tsv" kind=explicit lambda=$explicit_lambda
	if [ "$data" = lastfm-2k ]; then kind=implicit lambda=$implicit_lambda; fi
	case $system in
	mf_ext)
		run_mf_ext "$data" "$solver" ;;
	cmfrec)
		run_peer "$data" cmfrec "$solver" "$iterations" "$build/cmfrec_driver" "$kind" "$solver" \
			"$train" "$test" "$k" "$lambda" "$iterations" "$threads" "$implicit_alpha" ;;
	implicit)
		run_peer "$data" implicit "$solver" "$iterations" /usr/bin/python3 "$here/implicit_driver.py" \
			"$train" "$test" "$k" "$lambda" "$implicit_alpha" "$iterations" "$threads" "$solver" ;;
	libmf)
		run_peer "$data" LIBMF sgd "$libmf_epochs" "$build/libmf_driver" \
			"$train" "$test" "$k" "$libmf_l2" "$libmf_epochs" "$threads" ;;
	esac
}

for data in $datasets; do
	prepare "$data"
	if [ "$data" = lastfm-2k ]; then
		systems=(mf_ext:cg implicit:cg cmfrec:cg mf_ext:cholesky implicit:cholesky cmfrec:cholesky)
	else
		systems=(mf_ext:cholesky cmfrec:cholesky mf_ext:cg cmfrec:cg libmf:sgd)
	fi
	n=${#systems[@]}
	iterations=$iterations_small
	if [ "$data" = ml-10m ]; then iterations=$iterations_10m; fi
	for round in $(seq 1 "$rounds"); do
		for j in $(seq 0 $((n - 1))); do
			run_system "$data" "${systems[$(((j + round - 1) % n))]}"
		done
	done
done
