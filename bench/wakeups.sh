#!/usr/bin/env bash
# What wakes the proxy's threads, counted: the balancer beside bare YARP (bench/BareYarp), each alone on the proxy
# CPU in front of the three sample backends, after a warm-up: context switches per second of each kind of thread
# (the timer thread, thread-pool workers, the socket engine, ...; voluntary ones are wake-ups after a wait,
# involuntary ones include the sched_yield of thread-pool workers spinning for work) over --idle seconds without
# traffic and over --duration seconds of wrk -c64, read from /proc/PID/task/*/status; then the runtime's timers
# queued at that moment (bench/CostProbe's /timers). Writes bench/results/wakeups/report.md.
#
# Usage: bench/wakeups.sh [--warmup S] [--idle S] [--duration S] [--out DIR] [--smoke] [-- balancer settings...]
#   --smoke   2 s of warm-up, idle and load: checks the script works, numbers mean nothing
set -euo pipefail
cd "$(dirname "$0")/.."

warmup=20 idle=10 duration=10 out=bench/results smoke=0
balancer_settings=()
while [ $# -gt 0 ]; do
  case "$1" in
    --warmup) warmup=$2; shift 2 ;;
    --idle) idle=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --smoke) smoke=1; warmup=2; idle=2; duration=2; shift ;;
    --) shift; balancer_settings=("$@"); break ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || { echo "bench/wakeups.sh needs wrk (apt-get install wrk)" >&2; exit 2; }

echo "Building (Release)..."
for project in src/SampleBackend src/Balancer bench/BareYarp bench/CostProbe; do
  build=$(dotnet build "$project" -c Release --nologo -v quiet 2>&1) || { echo "$build" >&2; exit 1; }
done
report_dir="$out/wakeups$([ "$smoke" = 1 ] && echo -smoke || true)"
mkdir -p "$report_dir"
# shellcheck source=bench/lib.sh
. bench/lib.sh
cpus=$(nproc)
proxy_cpus=$([ "$cpus" -ge 2 ] && echo $((cpus - 1)) || echo 0)
load_cpus=0
export DOTNET_TC_CallCountingDelayMs=0 DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1
start_backends "$load_cpus"

# "name voluntary involuntary" per thread of $1, thread-pool workers and the like summed by name.
switches() {
  local task
  for task in /proc/"$1"/task/*; do
    { read -r name <"$task/comm" && awk -v n="$name" '/^voluntary/ { v = $2 } /^nonvoluntary/ { i = $2 } END { printf "%s|%d|%d\n", n, v, i }' "$task/status"; } 2>/dev/null || true
  done | awk -F'|' '{ v[$1] += $2; i[$1] += $3 } END { for (n in v) printf "%s|%d|%d\n", n, v[n], i[n] }'
}

# Per-second differences between two snapshots, threads that ended left out (their counts are gone with them).
rates() { # before after seconds label
  awk -F'|' -v s="$3" -v label="$4" 'NR == FNR { v[$1] = $2; i[$1] = $3; next }
    { printf "%s|%s|%.1f|%.1f\n", label, $1, ($2 - v[$1]) / s, ($3 - i[$1]) / s }' "$1" "$2"
}

measure() { # name command...
  local name=$1 port management pid rps
  shift
  port=$(free_port) management=$(free_port)
  write_config "$port" "$management" >"$work/$name.json"
  pid=$(start "$name" "$proxy_cpus" env DOTNET_STARTUP_HOOKS="$PWD/bench/CostProbe/bin/Release/net10.0/CostProbe.dll" \
    COST_PROBE_SOCKET="$work/$name.sock" "$@" --config "$work/$name.json")
  wait_http "http://127.0.0.1:$port/"
  echo "[$(date +%T)] $name: warm-up ${warmup} s, ${idle} s idle, ${duration} s of wrk -c64"
  taskset -c "$load_cpus" wrk -t1 -c64 -d"${warmup}s" "http://127.0.0.1:$port/" >/dev/null
  sleep 1
  switches "$pid" >"$work/a"; sleep "$idle"; switches "$pid" >"$work/b"
  rates "$work/a" "$work/b" "$idle" "$name|idle" >>"$work/rates"
  switches "$pid" >"$work/a"
  rps=$(taskset -c "$load_cpus" wrk -t1 -c64 -d"${duration}s" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ { printf "%.0f", $2 }')
  switches "$pid" >"$work/b"
  rates "$work/a" "$work/b" "$duration" "$name|load" >>"$work/rates"
  echo "$name|$rps" >>"$work/rps"
  curl -fsS --max-time 5 --unix-socket "$work/$name.sock" http://probe/timers >"$work/$name.timers" || echo "(not read)" >"$work/$name.timers"
  kill -TERM "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
}

measure balancer dotnet src/Balancer/bin/Release/net10.0/Balancer.dll "${balancer_settings[@]}"
measure bare-yarp dotnet bench/BareYarp/bin/Release/net10.0/BareYarp.dll

{
  echo "# What wakes the proxy's threads: the balancer beside bare YARP"
  echo
  [ "$smoke" = 1 ] && { echo "> **Smoke run**: a few seconds only; the numbers are not measurements."; echo; }
  report_provenance wakeups.sh "$@"
  echo "- Each proxy alone on CPU $proxy_cpus (wrk -t1 -c64 and the backends on CPU $load_cpus), ${warmup} s of warm-up, then ${idle} s without traffic and ${duration} s of wrk -c64; context switches per second by thread name (threads of one name summed), from /proc/PID/task/*/status."
  echo "- Balancer settings: ${balancer_settings[*]:-(as shipped)}; requests per second under wrk: $(tr '\n' ' ' <"$work/rps")"
  echo
  echo "| thread | balancer idle: voluntary / involuntary per s | bare YARP idle | balancer under load | bare YARP under load |"
  echo "|---|---:|---:|---:|---:|"
  awk -F'|' '{ k = $1 "|" $2; v[k] = $4; i[k] = $5; names[$3] = 1; cell[$1 "|" $2 "|" $3] = sprintf("%s / %s", $4, $5) }
    END { for (n in names) printf "| %s | %s | %s | %s | %s |\n", n, cell["balancer|idle|" n], cell["bare-yarp|idle|" n], cell["balancer|load|" n], cell["bare-yarp|load|" n] }' "$work/rates" | grep -v '| 0.0 / 0.0 | 0.0 / 0.0 | 0.0 / 0.0 | 0.0 / 0.0 |$' | sort
  for name in balancer bare-yarp; do
    echo
    echo "Timers queued in $name at the end of the load (period, due in ms, callback; per-request timeouts counted together):"
    echo
    echo '```'
    sed -E 's/ due_ms [0-9]+//' "$work/$name.timers" | sort | uniq -c | sort -rn
    echo '```'
  done
} >"$report_dir/report.md"
echo "Report: $report_dir/report.md"
