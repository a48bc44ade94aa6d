#!/usr/bin/env bash
# `make bench-peers`: mf_ext side by side with the libraries users pick
# instead -- LIBMF (SGD), cmfrec (ALS, Cholesky and CG) and implicit (ALS for
# implicit feedback, CG and Cholesky) -- on the same data, the same k, the
# same threads, in interleaved rounds.
#
# Installs the Debian packages the peers need when missing, builds and
# installs mf_ext (test/build.sh), builds the peers from ../shared/vendor
# (see its SOURCES.md) and the drivers in test/bench/peers/ into a temporary
# folder, then in a throw-away cluster splits each data set once (10% held
# out, fixed seed) and times every system in rounds (test/bench/peers/
# rounds.sh).  Prints a Markdown table and writes test/bench/peers.tsv.
#
# Run as root.  About 10 minutes on 2 idle cores (more when they are shared).
# Knobs (environment): MF_PEERS_ROUNDS (3), MF_PEERS_K (64),
# MF_PEERS_ITERATIONS (10), MF_PEERS_ITERATIONS_10M (5, at the ML-10M shape),
# MF_PEERS_LIBMF_EPOCHS (20), MF_PEERS_THREADS (2), MF_PEERS_DATASETS
# ("ml-latest-small ml-10m lastfm-2k"), MF_DATA_DIR, MF_VENDOR_DIR, and
# MF_PEERS_BUILD=DIR to build the peers into DIR once and reuse them.
set -euo pipefail
cd "$(dirname "$0")/../.."
data_dir=$(cd "${MF_DATA_DIR:-../shared/data}" && pwd)
vendor_dir=$(cd "${MF_VENDOR_DIR:-../shared/vendor}" && pwd)
for f in "$data_dir/ml-latest-small.tsv.xz" "$data_dir/lastfm-2k.tsv.xz" \
	"$vendor_dir"/libmf-*.tar.xz "$vendor_dir"/cmfrec-*.tar.xz "$vendor_dir"/implicit-*.tar.xz; do
	if [ ! -r "$f" ]; then
		echo "peers.sh: $f is missing; set MF_DATA_DIR or MF_VENDOR_DIR" >&2
		exit 1
	fi
done

bash test/build.sh

# What the peers need to build and run (SOURCES.md; implicit's Python code
# also imports tqdm and threadpoolctl), and /usr/bin/time.
packages=(g++ make cmake time xz-utils cython3 python3-dev python3-numpy python3-scipy
	python3-tqdm python3-threadpoolctl)
missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "peers.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
		{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
fi

out=$(mktemp -d /tmp/mf_ext-peers.XXXXXX)
chmod 755 "$out"
build=${MF_PEERS_BUILD:-$out/build}
mkdir -p "$build"
build=$(cd "$build" && pwd)
here=$PWD/test/bench/peers

# Runs "$@" with its output in $build/$log; shows the log if it fails.
logged() {
	local log=$1
	shift
	if ! "$@" >>"$build/$log" 2>&1; then
		tail -n 40 "$build/$log" >&2
		echo "peers.sh: failed: $* (log: $build/$log)" >&2
		exit 1
	fi
}

if [ ! -e "$build/.built" ]; then
	echo "building LIBMF, cmfrec and implicit in $build"
	for p in libmf cmfrec implicit; do
		rm -rf "${build:?}/$p"
		tar -xJf "$vendor_dir"/$p-*.tar.xz -C "$build"
	done

	# LIBMF: its Makefile (-O3 -march=native -DUSESSE, OpenMP) builds mf.o.
	logged libmf.log make -C "$build/libmf" mf.o

	# cmfrec: single precision, -march=native (SOURCES.md: without it
	# Cholesky runs about 6 times slower), OpenBLAS found by CMake.
	logged cmfrec.log cmake -S "$build/cmfrec" -B "$build/cmfrec/build" \
		-DUSE_FLOAT=ON -DUSE_MARCH_NATIVE=ON -DCMAKE_BUILD_TYPE=Release
	logged cmfrec.log make -C "$build/cmfrec/build" -j"$(nproc)"

	# implicit: no pip; cythonize the extension modules its package imports
	# (ALS, top-k, and bpr, lmf and nearest neighbours, which implicit's
	# __init__ imports; not evaluation.pyx, which it does not) and compile
	# them against Debian's Python and numpy, then import it from its
	# source folder through PYTHONPATH.
	suffix=$(/usr/bin/python3-config --extension-suffix)
	includes="$(/usr/bin/python3-config --includes) -I$(/usr/bin/python3 -c 'import numpy; print(numpy.get_include())')"
	modules=(implicit/cpu/_als implicit/cpu/topk implicit/cpu/bpr implicit/cpu/lmf implicit/_nearest_neighbours)
	for m in "${modules[@]}"; do
		logged implicit.log cython3 -3 --cplus -o "$build/implicit/$m.cpp" "$build/implicit/$m.pyx"
	done
	pids=()
	for m in "${modules[@]}"; do
		# shellcheck disable=SC2086 # $includes is several words
		logged "implicit-${m##*/}.log" g++ -O3 -fPIC -shared -fopenmp -std=c++17 -w $includes \
			-I"$build/implicit" -o "$build/implicit/$m$suffix" "$build/implicit/$m.cpp" &
		pids+=($!)
	done
	for pid in "${pids[@]}"; do wait "$pid"; done
	touch "$build/.built"
fi

# The drivers (test/bench/peers/), against the builds above.
gcc -O3 -march=native -std=gnu11 -Wall -I"$build/cmfrec/build" -o "$build/cmfrec_driver" \
	"$here/cmfrec_driver.c" -L"$build/cmfrec/build" -Wl,-rpath,"$build/cmfrec/build" -lcmfrec -lm
g++ -O3 -march=native -std=c++11 -Wall -pthread -fopenmp -I"$build/libmf" -o "$build/libmf_driver" \
	"$here/libmf_driver.cpp" "$build/libmf/mf.o"
export PYTHONPATH="$build/implicit"
/usr/bin/python3 -c 'import implicit.cpu.als' || { echo "peers.sh: implicit does not import" >&2; exit 1; }
if [ "$build" != "$out/build" ]; then ln -s "$build" "$out/build"; fi

# The peers thread themselves (SOURCES.md); mf_ext's backend inherits this
# too, as in `make bench-speed`.
export OPENBLAS_NUM_THREADS=1
machine="$(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
date=$(date -u '+%Y-%m-%d %H:%M UTC')
echo "machine: $machine, $(free -g | awk '/Mem:/ {print $2}') GiB; $date; commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
pg_virtualenv -o shared_buffers=256MB -o max_parallel_workers_per_gather=0 \
	bash "$here/rounds.sh" "$out" "$data_dir"

echo
/usr/bin/python3 "$here/report.py" "$out/rounds.tsv" "$out/peers.tsv" "$machine" "$date" | tee "$out/report.md"
cat <<NOTES | tee -a "$out/report.md"

- Same data for all: one split per data set (mf_is_test, 10% held out, seed 42; held-out rows of
  users or items without training rows dropped), dense ids; k = ${MF_PEERS_K:-64},
  ${MF_PEERS_THREADS:-2} threads, OPENBLAS_NUM_THREADS=1; ${MF_PEERS_ITERATIONS:-10} ALS iterations
  (${MF_PEERS_ITERATIONS_10M:-5} at the ML-10M shape), ${MF_PEERS_LIBMF_EPOCHS:-20} LIBMF epochs.
  Explicit: lambda 10 with biases.  lastfm-2k: strength ln(1 + plays), confidence
  1 + 10 * strength, lambda 50.
- wall s / CPU s: mf_ext's whole mf_train statement in a fresh backend (reading the table,
  iterations, storing the model), CPU of the backend process and its threads from /proc (10 ms
  ticks); the peers' fit call alone on arrays already in memory (reading files, saving and scoring
  not timed), CPU of the process.  s / iteration: mf_ext's mean recorded iteration time; peers'
  fit time / iterations (epochs for LIBMF).  Ratios: per round, then the median.
- peak MB: mf_ext's backend VmHWM (includes the shared buffers it touched); peers' maximum RSS of
  the whole driver process (reading the files, Python with numpy and scipy for implicit, scoring).
- Regularisation: mf_ext, cmfrec (scale_lam off, biases regularised by the same lambda) and
  implicit (regularization added unscaled to Y^T Y; it reads confidences from the matrix, so it gets
  1 + alpha * strength with its alpha = 1) minimise the same objective.  LIBMF does not: SGD with
  l2 = 0.05 applied at every rating (so weighted by each row's count, like weighted_lambda), on
  ratings divided by their standard deviation, and no biases: its RMSE is not at comparable
  regularisation.  CG is 3 steps per row everywhere (cmfrec's final Cholesky pass off).
  Random initialisations differ between the systems.
NOTES
cp "$out/peers.tsv" test/bench/peers.tsv
# The exported splits are large (ML-10M: 9 M rows) and derived from the data
# sets; drop them, and the peers' build unless MF_PEERS_BUILD keeps it.
rm -f "$out"/*.train.tsv "$out"/*.test.tsv "$out/time.txt"
if [ -z "${MF_PEERS_BUILD:-}" ]; then rm -rf "${out:?}/build"; else rm -f "$out/build"; fi
echo "results in $out (rounds.tsv: every run) and test/bench/peers.tsv"
