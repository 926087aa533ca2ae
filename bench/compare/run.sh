#!/bin/sh
# Runs the YCSB comparison: gopegasus onebox vs Redis (AOF everysec) vs etcd (1 and 3
# members), all on this machine, and writes bench/results/ycsb-DATE.md.
#
#   bench/compare/run.sh [extra flags for the compare program, e.g. --duration 10s]
#
# Needs Go and root (to install redis-server and etcd-server with apt-get when missing).
# Every server it starts listens on 127.0.0.1 only and is stopped before it exits.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

if ! command -v redis-server >/dev/null 2>&1 || ! command -v etcd >/dev/null 2>&1; then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server etcd-server
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ycsb-compare.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

echo "building gopegasus and the benchmark"
(cd "$root" && go build -o "$work/pegasus" ./cmd/pegasus && go build -o "$work/oneboxprof" ./bench/oneboxprof)
(cd "$here" && go build -o "$work/compare" .)
revision=$(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown)

cd "$here"
"$work/compare" --pegasus "$work/pegasus" --oneboxprof "$work/oneboxprof" \
	--work "$work/data" --out "$root/bench/results" --revision "$revision" "$@"
