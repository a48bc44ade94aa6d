#!/usr/bin/env bash
# Installs what is missing, then builds (warnings are errors) and installs
# mf_ext into the PostgreSQL 15 server.  Shared by demo.sh and run-tests.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "mf_ext: run this as root: it installs Debian packages and the extension" >&2
	exit 1
fi
bash test/install-deps.sh
export PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
make -s clean
make -s -j"$(nproc)"
make -s install
