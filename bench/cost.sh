#!/usr/bin/env bash
# Cost per request, counted rather than timed: CPU time and bytes allocated per proxied request of the
# balancer beside bare YARP (bench/BareYarp), each for a fixed number of requests (h2load --h1 -n), read
# inside each process by a startup hook (bench/CostProbe: GC.GetTotalAllocatedBytes, Environment.CpuUsage,
# JIT counters), plus system calls and context switches per request from perf (software events) when perf
# is there. Proxies alternate within each round and every figure is compared round by round with bare
# YARP's, so a machine busy with other work moves both sides alike. Writes bench/results/cost/report.md.
#
# With --from-start, each proxy is started fresh instead and measured batch after batch from its first
# request: elapsed seconds, CPU µs and bytes per request of each batch, JIT time and methods compiled so far,
# RSS: how soon its cost per request settles.
#
# Usage: bench/cost.sh [--rounds N] [--requests N] [--connections C] [--warmup S] [--from-start BATCHES] [--out DIR] [--smoke]
#                      [--proxy NAME 'VAR=VALUE ... path/to/App.dll [args]'] ... [-- balancer settings...]
#   --rounds N       rounds, every proxy once per round, order reversed every other round (default 5)
#   --requests N     requests per proxy per round (default 30000)
#   --connections C  h2load connections (default 64)
#   --warmup S       seconds of wrk -c64 per proxy before the rounds (default 30)
#   --from-start B   start each proxy fresh, then B batches of --requests from the first request (one round per --rounds)
#   --proxy NAME CMD another proxy to measure beside the two (an older build, other runtime settings): CMD is
#                    environment assignments then the app's DLL and arguments; it gets --config FILE appended
#   --smoke          1 round of 2000 requests, 2 s warm-up: checks the script works, numbers mean nothing
# Needs h2load (nghttp2-client) and wrk; perf (linux-perf) is optional.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=5 requests=30000 connections=64 warmup=30 from_start=0 out=bench/results smoke=0
names=(bare-yarp balancer)
commands=("bench/BareYarp/bin/Release/net10.0/BareYarp.dll" "src/Balancer/bin/Release/net10.0/Balancer.dll")
balancer_settings=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --requests) requests=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --from-start) from_start=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --proxy) names+=("$2"); commands+=("$3"); shift 3 ;;
    --smoke) smoke=1; rounds=1; requests=2000; warmup=2; shift ;;
    --) shift; balancer_settings=("$@"); break ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$smoke" = 1 ] && [ "$from_start" -gt 2 ] && from_start=2
export PATH="$PATH:/usr/sbin"
for tool in h2load wrk; do
  command -v "$tool" >/dev/null || { echo "bench/cost.sh needs '$tool' (apt-get install nghttp2-client wrk)" >&2; exit 2; }
done
use_perf=0
command -v perf >/dev/null && perf stat -e task-clock -x, -- true >/dev/null 2>&1 && use_perf=1

echo "Building (Release)..."
for project in src/SampleBackend src/Balancer bench/BareYarp bench/CostProbe; do
  build=$(dotnet build "$project" -c Release --nologo -v quiet 2>&1) || { echo "$build" >&2; exit 1; }
done

report_dir="$out/cost$([ "$smoke" = 1 ] && echo -smoke || true)"
mkdir -p "$report_dir"
# shellcheck source=bench/lib.sh
. bench/lib.sh
cpus=$(nproc)
proxy_cpus=$([ "$cpus" -ge 2 ] && echo $((cpus - 1)) || echo 0)
load_cpus=0
# The runtime setting the deployment files start the balancer with; every proxy here gets it.
export DOTNET_TC_CallCountingDelayMs=0
# Both proxies turn inline socket completions on in their Main, but the runtime reads the variable once, and
# the probe's socket, made by the startup hook before Main runs, would fix it at off: set it beforehand.
export DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1
start_backends "$load_cpus"

# Starts proxy $1 (index) fresh: sets pids[$1] and ports[$1] and waits for its first answer.
pids=() ports=()
start_proxy() {
  local i=$1 port management
  port=$(free_port) management=$(free_port)
  write_config "$port" "$management" >"$work/${names[$i]}.json"
  local extra=()
  [ "${names[$i]}" = balancer ] && extra=("${balancer_settings[@]}")
  # The command is words: VAR=VALUE ... then the app; a DLL runs through dotnet, an executable (apphost,
  # Native AOT) as it is.
  local words=() word app=0
  read -r -a words <<<"${commands[$i]}"
  local command=()
  for word in "${words[@]}"; do
    [ "$app" = 0 ] && [[ "$word" != *=* ]] && { app=1; [[ "$word" == *.dll ]] && command+=(dotnet); }
    command+=("$word")
  done
  pids[i]=$(start "${names[$i]}" "$proxy_cpus" env DOTNET_STARTUP_HOOKS="$PWD/bench/CostProbe/bin/Release/net10.0/CostProbe.dll" \
    COST_PROBE_SOCKET="$work/${names[$i]}.sock" "${command[@]}" --config "$work/${names[$i]}.json" "${extra[@]}")
  ports[i]=$port
  wait_http "http://127.0.0.1:$port/" || { tail -n 20 "$work/${names[$i]}.log" >&2; exit 1; }
}

probe() { # index -> "allocated cpu_us jit_ms jit_methods rss_kb" (n/a for what a process without the hook cannot say)
  local counters
  counters=$(curl -fsS --max-time 5 --unix-socket "$work/${names[$1]}.sock" http://probe/ 2>/dev/null || true)
  awk -v rss="$(awk '/^VmRSS/ { print $2 }' "/proc/${pids[$1]}/status")" -v ticks="$(cpu_ticks "${pids[$1]}")" -v hz="$(getconf CLK_TCK)" '
    { v[$1] = $2 }
    END { printf "%s %s %s %s %s\n", ("allocated_bytes" in v) ? v["allocated_bytes"] : "n/a", ("cpu_us" in v) ? v["cpu_us"] : ticks / hz * 1e6,
          ("jit_ms" in v) ? v["jit_ms"] : "n/a", ("jit_methods" in v) ? v["jit_methods"] : "n/a", rss }' <<<"$counters"
}

# One measured batch of --requests against proxy $1: prints "rps alloc_per_request cpu_us_per_request
# syscalls_per_request switches_per_request jit_ms jit_methods rss_mb failed".
measure() {
  local i=$1 pid=${pids[$1]} before after perf_pid="" result
  before=$(probe "$i")
  if [ "$use_perf" = 1 ]; then
    perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$pid" -o "$work/perf.csv" 2>/dev/null &
    perf_pid=$!
    sleep 0.2
  fi
  taskset -c "$load_cpus" h2load --h1 -t1 -c"$connections" -n"$requests" "http://127.0.0.1:${ports[$i]}/" >"$work/h2load.out"
  after=$(probe "$i")
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
  local syscalls=n/a switches=n/a
  if [ -n "$perf_pid" ]; then
    syscalls=$(awk -F, '/sys_enter/ { print $1 }' "$work/perf.csv")
    switches=$(awk -F, '/context-switches/ { print $1 }' "$work/perf.csv")
  fi
  result=$(awk -v before="$before" -v after="$after" -v n="$requests" -v sc="$syscalls" -v cs="$switches" '
    /finished in/ { rps = $4 }
    /^requests:/ { failed += $10 + $12 + $14 }
    /^status codes:/ { failed += $7 + $9 }
    END {
      split(before, b, " "); split(after, a, " ")
      alloc = (b[1] == "n/a") ? "n/a" : sprintf("%.0f", (a[1] - b[1]) / n)
      printf "%.0f %s %.2f %s %s %s %s %.1f %d\n", rps, alloc, (a[2] - b[2]) / n,
        (sc == "n/a" || sc == "" || sc ~ /not/) ? "n/a" : sprintf("%.2f", sc / n), (cs == "n/a" || cs == "" || cs ~ /not/) ? "n/a" : sprintf("%.3f", cs / n),
        a[3], a[4], a[5] / 1024, failed
    }' "$work/h2load.out")
  echo "$result"
}

if [ "$from_start" -gt 0 ]; then
  for round in $(seq "$rounds"); do
    for i in "${!names[@]}"; do
      started=$(date +%s.%N)
      start_proxy "$i"
      answered=$(date +%s.%N)
      first=$(probe "$i")
      echo "${names[$i]}|$round|0|$(awk -v s="$started" -v a="$answered" 'BEGIN { printf "%.1f", a - s }')|first answer|||||$(cut -d' ' -f3 <<<"$first")|$(cut -d' ' -f4 <<<"$first")|$(awk -v k="$(cut -d' ' -f5 <<<"$first")" 'BEGIN { printf "%.1f", k / 1024 }')|" | tee -a "$work/batches"
      for batch in $(seq "$from_start"); do
        read -r rps alloc cpu sc cs jit methods rss failed <<<"$(measure "$i")"
        echo "${names[$i]}|$round|$batch|$(awk -v s="$started" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - s }')|$rps|$cpu|$alloc|$sc|$cs|$jit|$methods|$rss|$failed" | tee -a "$work/batches"
      done
      kill -TERM "${pids[$i]}"
      for _ in $(seq 100); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.1; done
    done
  done
  {
    echo "# Cost per request from the start"
    echo
    [ "$smoke" = 1 ] && { echo "> **Smoke run**: a few requests only; the numbers are not measurements."; echo; }
    report_provenance cost.sh "$@"
    echo "- Each proxy started fresh on CPU $proxy_cpus, then $from_start batches of $requests requests (h2load --h1 -c$connections, backends and h2load on CPU $load_cpus), back to back."
    echo "- Settled: the first batch from which every later batch's CPU per request is within 10% of the median of the last three."
    echo
    echo "| proxy | round | batch | seconds since start | RPS | CPU µs / request | bytes / request | syscalls / request | switches / request | JIT ms so far | methods compiled | RSS MB | failed |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    while IFS='|' read -r line; do echo "| ${line//|/ | } |"; done <"$work/batches"
    echo
    echo "| proxy | round | settled at batch | seconds since start | JIT ms at the first answer | JIT ms at the end |"
    echo "|---|---:|---:|---:|---:|---:|"
    awk -F'|' '
      $3 == 0 { jit0[$1 "|" $2] = $10; next }
      { k = $1 "|" $2; n[k]++; cpu[k, n[k]] = $6; t[k, n[k]] = $4; jit[k] = $10 }
      END {
        for (k in n) {
          m = n[k]; a = cpu[k, m]; b = cpu[k, m - 1]; c = cpu[k, m - 2]
          med = (a < b) ? ((b < c) ? b : ((a < c) ? c : a)) : ((a < c) ? a : ((b < c) ? c : b))
          if (m < 3) med = a
          settled = m
          for (j = m; j >= 1; j--) { if (cpu[k, j] > med * 1.1 || cpu[k, j] < med * 0.9) break; settled = j }
          split(k, p, "|")
          printf "| %s | %s | %d | %s | %s | %s |\n", p[1], p[2], settled, t[k, settled], jit0[k], jit[k]
        }
      }' "$work/batches" | sort
  } >"$report_dir/report.md"
  echo "Report: $report_dir/report.md"
  exit 0
fi

for i in "${!names[@]}"; do start_proxy "$i"; done
for i in "${!names[@]}"; do
  echo "[$(date +%T)] ${names[$i]}: warm-up ${warmup} s"
  taskset -c "$load_cpus" wrk -t1 -c64 -d"${warmup}s" "http://127.0.0.1:${ports[$i]}/" >/dev/null
done
for round in $(seq "$rounds"); do
  order=$(seq 0 $((${#names[@]} - 1)))
  [ $((round % 2)) -eq 0 ] && order=$(echo "$order" | tac)
  for i in $order; do
    echo "${names[$i]}|$round|$(measure "$i" | tr ' ' '|')" | tee -a "$work/runs"
  done
done

{
  echo "# Cost per request: the balancer beside bare YARP"
  echo
  [ "$smoke" = 1 ] && { echo "> **Smoke run**: a few requests only; the numbers are not measurements."; echo; }
  report_provenance cost.sh "$@"
  echo "- Each proxy on CPU $proxy_cpus, h2load --h1 -t1 -c$connections and the backends on CPU $load_cpus; ${warmup} s of wrk -c64 each, then $rounds rounds of $requests requests, every proxy once per round (order reversed every other round). CPU time and bytes allocated are read inside each process before and after its batch (bench/CostProbe); system calls and context switches by \`perf stat -p\` (software events); RPS depends on the machine's load, the counts much less."
  echo "- Balancer settings: ${balancer_settings[*]:-(as shipped: metrics on, tracing off)}"
  echo
  echo "| proxy | CPU µs / request | bytes / request | syscalls / request | context switches / request | RPS | CPU vs bare YARP (round by round) | bytes vs bare YARP | peak RSS MB | failed |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for name in "${names[@]}"; do
    awk -F'|' -v n="$name" '
      function median(a, k,   i, j, t) { for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
      $1 == "bare-yarp" { bcpu[$2] = $5; balloc[$2] = $4 }
      $1 == n { k++; rps[k] = $3; alloc[k] = $4; cpu[k] = $5; sc[k] = $6; cs[k] = $7; round[k] = $2; if ($10 > peak) peak = $10; failed += $11 }
      END {
        for (i = 1; i <= k; i++) { cr[i] = cpu[i] / bcpu[round[i]]; ar[i] = (alloc[i] == "n/a" || balloc[round[i]] == "n/a") ? 0 : alloc[i] / balloc[round[i]] }
        printf "| %s | %.2f | %s | %s | %s | %.0f | %.3f | %s | %.1f | %d |\n", n, median(cpu, k),
          alloc[1] == "n/a" ? "n/a" : sprintf("%.0f", median(alloc, k)), sc[1] == "n/a" ? "n/a" : sprintf("%.2f", median(sc, k)),
          cs[1] == "n/a" ? "n/a" : sprintf("%.3f", median(cs, k)), median(rps, k), median(cr, k),
          alloc[1] == "n/a" ? "n/a" : sprintf("%.3f", median(ar, k)), peak, failed
      }' "$work/runs"
  done
  echo
  echo "Every batch (proxy, round, RPS, bytes / request, CPU µs / request, syscalls / request, switches / request, JIT ms so far, methods compiled, RSS MB, failed):"
  echo
  echo '```'
  cat "$work/runs"
  echo '```'
} >"$report_dir/report.md"
echo "Report: $report_dir/report.md"
