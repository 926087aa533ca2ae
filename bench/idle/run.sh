#!/usr/bin/env bash
# The idle cost of many partitions: starts `pegasus onebox` (BIN, default a build of this
# checkout) in a temporary directory, measures it idle for 10 s, creates 8 tables of 64
# partitions with the shell (timing each create), waits 5 s, and measures it idle again for
# 20 s: CPU share of one core, resident memory and open files from /proc, disk use. Give two
# binaries to compare them side by side in one run:
#
#	bench/idle/run.sh                       # this checkout
#	bench/idle/run.sh /tmp/old /tmp/new     # each binary in turn
set -euo pipefail
cd "$(dirname "$0")/../.."
bins=("$@")
if [ ${#bins[@]} -eq 0 ]; then
	go build -o "${TMPDIR:-/tmp}/pegasus-idle" ./cmd/pegasus
	bins=("${TMPDIR:-/tmp}/pegasus-idle")
fi
hz=$(getconf CLK_TCK)

# measure PID SECONDS: CPU %, resident MiB and open files of PID over SECONDS.
measure() {
	local pid=$1 secs=$2 t0 t1
	t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
	sleep "$secs"
	t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
	echo "cpu $(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$secs" 'BEGIN{printf "%.1f", (b-a)*100/hz/s}')% of a core," \
		"rss $(awk '/VmRSS/{print int($2/1024)}' "/proc/$pid/status") MiB, $(ls "/proc/$pid/fd" | wc -l) open files"
}

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

for bin in "${bins[@]}"; do
	dir=$(mktemp -d)
	meta=$(port)
	while [ "$meta" -gt 65000 ]; do meta=$(port); done
	rep=$(port)
	while [ "$rep" -gt 65000 ]; do rep=$(port); done
	"$bin" onebox --data "$dir/onebox" --meta-port "$meta" --replica-port "$rep" >"$dir/onebox.log" 2>&1 &
	pid=$!
	metas="127.0.0.1:$meta,127.0.0.1:$((meta + 1)),127.0.0.1:$((meta + 2))"
	for _ in $(seq 60); do
		"$bin" shell --metas "$metas" -c ls >/dev/null 2>&1 && break
		sleep 1
	done
	echo "== $bin"
	echo "idle, tables temp and stat: $(measure "$pid" 10)"
	start=$(date +%s.%N)
	for i in $(seq 8); do
		"$bin" shell --metas "$metas" -c "create idle$i -p 64 -r 3" >/dev/null
	done
	end=$(date +%s.%N)
	echo "create of 64 partitions: $(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.1f", (b-a)/8}') s each"
	sleep 5
	echo "idle, 520 partitions: $(measure "$pid" 20), disk $(du -sm "$dir/onebox" | cut -f1) MB"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	rm -rf "$dir"
done
