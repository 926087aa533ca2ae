#!/usr/bin/env bash
# The idle cost of many partitions: starts `pegasus onebox` (BIN, default a build of this
# checkout) in a temporary directory, measures it idle for 10 s, creates 8 tables of 64
# partitions with the shell (timing each create), waits 5 s, and measures it idle again for
# 20 s: CPU share of one core, resident memory and open files from /proc, disk use; then,
# PARK_WAIT seconds (default 70: past store_park_idle_seconds, 60 by default) after the
# creates, once more, with the open files by kind (table files, other files of the stores,
# sockets, ...). Give two binaries to compare them side by side in one run:
#
#	bench/idle/run.sh                       # this checkout
#	bench/idle/run.sh /tmp/old /tmp/new     # each binary in turn
#
# TABLES (default 8) tables of 64 partitions are created: 25 for 1,600 partitions. With LOAD=1 (the default), a light load
# follows the last measure: `pegasus bench` putting 100-byte values with 2 threads for 20 s
# into table idle1 (its 64 partitions, parked until then), whose put latencies are printed,
# then a measure under it. HEAP=DIR saves a heap profile (pprof) of each binary into DIR at
# the last idle measure; PROFILE=DIR a 20 s CPU profile right after it.
set -euo pipefail
cd "$(dirname "$0")/../.."
bins=("$@")
if [ ${#bins[@]} -eq 0 ]; then
	go build -o "${TMPDIR:-/tmp}/pegasus-idle" ./cmd/pegasus
	bins=("${TMPDIR:-/tmp}/pegasus-idle")
fi
hz=$(getconf CLK_TCK)
tables=${TABLES:-8}
park_wait=${PARK_WAIT:-70}

# fds PID: the open files of PID by kind.
fds() {
	find "/proc/$1/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null | awk '
		/\.sst$/ {t++; next} /MANIFEST/ {m++; next} /LOCK$/ {l++; next}
		/^socket:/ {s++; next} /^(pipe|anon_inode)/ {p++; next}
		/\/data$/ {d++; next} {o++}
		END {printf "tables %d, MANIFEST %d, LOCK %d, store dirs %d, sockets %d, pipes/anon %d, other %d", t, m, l, d, s, p, o}'
}

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
	slowest=0
	for i in $(seq "$tables"); do
		t0=$(date +%s.%N)
		"$bin" shell --metas "$metas" -c "create idle$i -p 64 -r 3" >/dev/null || echo "create idle$i failed"
		slowest=$(awk -v a="$t0" -v b="$(date +%s.%N)" -v m="$slowest" 'BEGIN{d=b-a; print (d>m ? d : m)}')
	done
	end=$(date +%s.%N)
	echo "create of 64 partitions: $(awk -v a="$start" -v b="$end" -v n="$tables" 'BEGIN{printf "%.1f", (b-a)/n}') s each, slowest $(printf '%.1f' "$slowest") s"
	kill -0 "$pid" 2>/dev/null || { echo "the onebox died:"; grep -m3 -i "panic\|fatal" "$dir/onebox.log"; rm -rf "$dir"; continue; }
	parts=$((tables * 64 + 8))
	sleep 5
	echo "idle, $parts partitions: $(measure "$pid" 20), disk $(du -sm "$dir/onebox" | cut -f1) MB"
	sleep $((park_wait > 25 ? park_wait - 25 : 0))
	echo "idle, $parts partitions, ${park_wait} s after the creates: $(measure "$pid" 20)"
	echo "  open files: $(fds "$pid")"
	if [ -n "${HEAP:-}" ]; then
		mkdir -p "$HEAP"
		curl -sf -o "$HEAP/$(basename "$bin").heap" "http://127.0.0.1:$rep/pprof/heap" || echo "no heap profile"
	fi
	if [ -n "${PROFILE:-}" ]; then
		mkdir -p "$PROFILE"
		curl -sf -o "$PROFILE/$(basename "$bin").cpu" "http://127.0.0.1:$rep/pprof/profile?seconds=20" || echo "no CPU profile"
	fi
	if [ "${LOAD:-1}" != 0 ]; then
		"$bin" bench --metas "$metas" --table idle1 --workload put --threads 2 --duration 20s \
			--records 20000 --value-size 100 --distribution uniform --json >"$dir/bench.json" 2>"$dir/bench.err" &
		bench=$!
		sleep 5
		load=$(measure "$pid" 10)
		wait "$bench" || echo "bench failed: $(tail -3 "$dir/bench.err")"
		echo "light load (2 threads putting into idle1): $(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
o = [o for p in r["phases"] if p["phase"] == "run" for o in p["operations"]][-1]
print("%d puts, %d errors, %.0f/s, p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (o["count"], o["errors"], o["ops_per_sec"], o["p50_us"] / 1e3, o["p99_us"] / 1e3, o["max_us"] / 1e3))
' "$dir/bench.json")"
		echo "  under it: $load"
	fi
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	rm -rf "$dir"
done
