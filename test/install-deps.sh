#!/usr/bin/env bash
# Installs the Debian 12 packages mf_ext needs to build, run and test, when
# any is missing (one `apt-get update`, then one `apt-get install`).
set -euo pipefail

packages=(
	make gcc libc6-dev           # build
	postgresql-15               # the server
	postgresql-server-dev-15    # PGXS, server headers (pulls in clang for JIT bitcode)
	postgresql-common           # pg_virtualenv: throw-away clusters
	libopenblas-dev             # BLAS + LAPACK
	libipc-run-perl             # TAP tests (PostgreSQL::Test::Cluster)
	sqlsmith                    # fuzzing (test/t/006_fuzz.pl)
	postgresql-15-cron          # pg_cron: the nightly job (test/t/015_nightly.pl)
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "mf_ext: missing Debian packages: ${missing[*]}; run this as root (or: sudo apt-get install ${missing[*]})" >&2
	exit 1
fi
echo "mf_ext: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
