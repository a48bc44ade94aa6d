#!/usr/bin/env bash
# The README's first command: installs what is missing, builds and installs
# mf_ext, starts a throw-away PostgreSQL 15 cluster, loads generated movie
# ratings, trains a model and prints recommendations.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/build.sh
pg_virtualenv psql -X -q -f test/demo.sql
