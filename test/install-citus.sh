#!/usr/bin/env bash
# Builds Citus 12.1 (distributed PostgreSQL) from ../shared/vendor and
# installs it into the PostgreSQL 15 server, when it is not there yet: the
# TAP test test/t/016_citus.pl runs mf_ext on a Citus cluster.  About 3
# minutes on 2 cores.  As root (it installs Debian packages and the build).
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
if [ -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ]; then
	exit 0
fi
tarball=../shared/vendor/citus-12.1.12.tar.xz
sha256=957be10c8f932763c1c0c4577ace53a5d007347637f8b790129950dd8b6eca15
if [ ! -f "$tarball" ]; then
	echo "mf_ext: $tarball is missing: test/t/016_citus.pl needs Citus 12.1 (../shared/vendor/SOURCES.md)" >&2
	echo "mf_ext: the project's shared folder sits beside the checkout (as in CI); for a clone elsewhere, link it: ln -s /path/to/shared ../shared" >&2
	exit 1
fi
echo "$sha256  $tarball" | sha256sum -c --quiet
packages=(liblz4-dev libzstd-dev libkrb5-dev libselinux1-dev libxslt1-dev libpam0g-dev libreadline-dev)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
work=$(mktemp -d /tmp/mf_ext-citus.XXXXXX)
trap 'rm -rf "$work"' EXIT
tar -xJf "$tarball" -C "$work"
cd "$work/citus-12.1.12"
echo "mf_ext: building Citus 12.1.12 for test/t/016_citus.pl"
./configure -q PG_CONFIG="$PG_CONFIG" --without-libcurl >/dev/null
make -s -j"$(nproc)" >/dev/null
make -s install >/dev/null
