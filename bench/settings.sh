#!/usr/bin/env bash
# Runtime settings side by side: one balancer process per variant (each started with its own environment,
# e.g. GC settings), all in front of the same three sample backends, measured in alternating rounds of
# wrk -c64 (--connections N for another count): RPS, CPU µs per request, RSS (peak over the run, sampled
# every 0.5 s), and each variant's RPS and CPU per request against the first variant's run of the same
# round (median of the rounds).
# Writes bench/results/settings/report.md (or --out DIR/settings/report.md).
#
# With --from-start S, each round starts every variant fresh instead and records its requests per second in
# each of the first S seconds of wrk (one-second slices) and its CPU time per request, then stops it: how soon
# each one is at speed.
#
# Usage: bench/settings.sh [--rounds N] [--duration S] [--warmup S] [--connections N] [--from-start S] [--out DIR] [--smoke] NAME='VAR=VALUE ...' ...
#   e.g. bench/settings.sh shipped='' workstation='DOTNET_gcServer=0' conserve='DOTNET_GCConserveMemory=5'
#   A variant's BALANCER_EXECUTABLE=PATH runs that executable instead of dotnet Balancer.dll, e.g. the Native AOT
#   build: aot="BALANCER_EXECUTABLE=$(deploy/aot/publish.sh)"; BALANCER_DLL=PATH runs dotnet PATH instead, e.g. bare
#   YARP beside the balancer: bare='BALANCER_DLL=bench/BareYarp/bin/Release/net10.0/BareYarp.dll' (built here too).
#   --unpinned: nothing pinned, as the race-unpinned experiment: the balancers, the backends and wrk (-t one per
#   CPU) all share every CPU, so what a variant costs shows in the RPS too.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=6 duration=10 warmup=40 out=bench/results smoke=0 from_start=0 connections=64 unpinned=0
# The command line as given, for the report (the loop below consumes it); words with spaces quoted.
arguments=()
for word in "$@"; do [[ $word =~ ^[][A-Za-z0-9_./=:,+-]*$ ]] && arguments+=("$word") || arguments+=("${word@Q}"); done
variants=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --from-start) from_start=$2; shift 2 ;;
    --unpinned) unpinned=1; shift ;;
    --smoke) smoke=1; rounds=1; duration=2; warmup=2; shift ;;
    *=*) variants+=("$1"); shift ;;
    *) echo "unknown argument $1 (variants are NAME='VAR=VALUE ...')" >&2; exit 2 ;;
  esac
done
[ ${#variants[@]} -gt 0 ] || { echo "name at least one variant: NAME='VAR=VALUE ...' (NAME='' for the balancer as shipped)" >&2; exit 2; }
command -v wrk >/dev/null || { echo "bench/settings.sh needs wrk (apt-get install wrk)" >&2; exit 2; }

cpus=$(nproc)
proxy_cpus=$([ "$cpus" -ge 2 ] && echo $((cpus - 1)) || echo 0)
load_cpus=0 wrk_threads=1
if [ "$unpinned" = 1 ]; then proxy_cpus=0-$((cpus - 1)) load_cpus=0-$((cpus - 1)) wrk_threads=$cpus; fi
echo "Building (Release)..."
for project in src/SampleBackend src/Balancer bench/BareYarp; do
  build=$(dotnet build "$project" -c Release --nologo -v quiet 2>&1) || { echo "$build" >&2; exit 1; }
done
report_dir="$out/settings$([ "$smoke" = 1 ] && echo -smoke || true)"
mkdir -p "$report_dir"
# shellcheck source=bench/lib.sh
. bench/lib.sh
start_backends "$load_cpus"

# One balancer for a variant: its name, settings, and where its PID and port are written.
start_variant() { # name settings
  local port management
  port=$(free_port) management=$(free_port)
  write_config "$port" "$management" >"$work/$1.json"
  local command=(dotnet src/Balancer/bin/Release/net10.0/Balancer.dll) word
  for word in $2; do
    [[ $word == BALANCER_EXECUTABLE=* ]] && command=("${word#*=}")
    [[ $word == BALANCER_DLL=* ]] && command=(dotnet "${word#*=}")
  done
  # shellcheck disable=SC2086  # the settings are words: VAR=VALUE ...
  started_pid=$(start "$1" "$proxy_cpus" env $2 "${command[@]}" --config "$work/$1.json")
  # Bare YARP has no management listener.
  [[ " $2 " == *" BALANCER_DLL="* ]] || wait_http "http://127.0.0.1:$management/healthz"
  wait_http "http://127.0.0.1:$port/"
  started_port=$port
}

hz=$(getconf CLK_TCK)
if [ "$from_start" -gt 0 ]; then
  for round in $(seq "$rounds"); do
    for variant in "${variants[@]}"; do
      name=${variant%%=*}
      start_variant "$name-$round" "${variant#*=}"
      line="$name|$round" cpu_line="$name|$round"
      for _ in $(seq "$from_start"); do
        before=$(cpu_ticks "$started_pid")
        rps=$(taskset -c "$load_cpus" wrk -t"$wrk_threads" -c"$connections" -d1s "http://127.0.0.1:$started_port/" | awk '/Requests\/sec/ { printf "%.0f", $2 }')
        line="$line|$rps"
        # The process's own CPU time per request: what a busy machine moves far less than the requests per second.
        cpu_line="$cpu_line|$(awk -v t="$(( $(cpu_ticks "$started_pid") - before ))" -v hz="$hz" -v r="$rps" 'BEGIN { printf "%.0f", (r > 0 ? t / hz / r * 1e6 : 0) }')"
      done
      echo "$line" | tee -a "$work/runs"
      echo "$cpu_line" >>"$work/cpu-runs"
      kill -TERM "$started_pid"
      for _ in $(seq 100); do kill -0 "$started_pid" 2>/dev/null || break; sleep 0.1; done
    done
  done
  {
    echo "# Runtime settings from the start"
    echo
    report_provenance settings.sh "${arguments[@]}"
    echo "- Each balancer started fresh on CPU $proxy_cpus, then wrk -t$wrk_threads -c$connections in 1 s slices for $from_start s (backends and wrk on CPU $load_cpus); $rounds round(s), variants in turn."
    echo
    echo "Requests per second in each second from the first request (variant, round, then one column per second):"
    echo
    echo '```'
    cat "$work/runs"
    echo '```'
    echo
    echo "CPU µs per request in each of those seconds (the balancer's user + system time over the requests wrk counted):"
    echo
    echo '```'
    cat "$work/cpu-runs"
    echo '```'
  } >"$report_dir/report.md"
  echo "Report: $report_dir/report.md"
  exit 0
fi

names=() pids=() ports=()
for variant in "${variants[@]}"; do
  name=${variant%%=*}
  start_variant "$name" "${variant#*=}"
  names+=("$name") pids+=("$started_pid") ports+=("$started_port")
done

for i in "${!names[@]}"; do
  echo "[$(date +%T)] ${names[$i]}: warm-up ${warmup} s"
  taskset -c "$load_cpus" wrk -t"$wrk_threads" -c"$connections" -d"${warmup}s" "http://127.0.0.1:${ports[$i]}/" >/dev/null
done

for round in $(seq "$rounds"); do
  # Alternating order, so that neither variant always runs first in a round.
  order=$(seq 0 $((${#names[@]} - 1)))
  [ $((round % 2)) -eq 0 ] && order=$(echo "$order" | tac)
  for i in $order; do
    pid=${pids[$i]}
    before=$(cpu_ticks "$pid") peak=0
    taskset -c "$load_cpus" wrk -t"$wrk_threads" -c"$connections" -d"${duration}s" "http://127.0.0.1:${ports[$i]}/" >"$work/run.wrk" &
    wrk=$!
    while kill -0 "$wrk" 2>/dev/null; do
      rss=$(rss_mb "$pid")
      # Where the memory is at the variant's highest sample so far (bench/rss-map.sh), for the report.
      peak=$(awk -v a="$peak" -v b="$rss" 'BEGIN { print (b > a ? b : a) }')
      highest=$(awk '{ print $1 }' "$work/${names[$i]}.map" 2>/dev/null || echo 0)
      if awk -v a="$highest" -v b="$rss" 'BEGIN { exit !(b > a) }'; then
        echo "$rss $(bench/rss-map.sh --line "$pid")" >"$work/${names[$i]}.map"
      fi
      sleep 0.5
    done
    wait "$wrk"
    ticks=$(( $(cpu_ticks "$pid") - before ))
    requests=$(awk '/requests in/ { print $1 }' "$work/run.wrk")
    seconds=$(awk '/requests in/ { sub(/s,/, "", $4); print $4 }' "$work/run.wrk")
    errors=$(awk '/Non-2xx|Socket errors/ { print }' "$work/run.wrk" | tr '\n' ' ')
    awk -v n="${names[$i]}" -v r="$round" -v q="$requests" -v s="$seconds" -v t="$ticks" -v hz="$hz" -v p="$peak" -v e="$errors" \
      'BEGIN { printf "%s|%d|%.0f|%.2f|%.1f|%s\n", n, r, q / s, t / hz / q * 1e6, p, e }' | tee -a "$work/runs"
  done
done

# The kernel's high-water mark of each process's RSS, start-up included (the table's peak is sampled during the rounds).
hwm=()
for pid in "${pids[@]}"; do hwm+=("$(awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")"); done

{
  echo "# Runtime settings side by side"
  echo
  [ "$smoke" = 1 ] && { echo "> **Smoke run**: a few seconds only; the numbers are not measurements."; echo; }
  report_provenance settings.sh "${arguments[@]}"
  echo "- Each balancer on CPU $proxy_cpus, wrk -t$wrk_threads -c$connections and the backends on CPU $load_cpus; ${warmup} s warm-up each, then $rounds rounds of ${duration} s, every variant once per round (order reversed every other round)."
  echo
  echo "| variant | settings | RPS (median) | CPU µs / request (median) | peak RSS (MB, max) | RPS vs ${names[0]}, round by round (median) | CPU / request vs ${names[0]} (median) |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  for i in "${!names[@]}"; do
    awk -F'|' -v n="${names[$i]}" -v base="${names[0]}" -v settings="${variants[$i]#*=}" '
      function median(a, k,   i, j, t) { for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
      $1 == base { brps[$2] = $3; bcpu[$2] = $4 }
      $1 == n { k++; rps[k] = $3; cpu[k] = $4; round[k] = $2; if ($5 > peak) peak = $5 }
      END {
        for (i = 1; i <= k; i++) { rr[i] = rps[i] / brps[round[i]]; cr[i] = cpu[i] / bcpu[round[i]] }
        printf "| %s | `%s` | %.0f | %.2f | %.1f | %.3f | %.3f |\n", n, settings == "" ? "(as shipped)" : settings, median(rps, k), median(cpu, k), peak, median(rr, k), median(cr, k)
      }' "$work/runs"
  done
  echo
  echo "RSS high-water mark (VmHWM) at the end, MB: $(for i in "${!names[@]}"; do printf '%s %s; ' "${names[$i]}" "${hwm[$i]}"; done)"
  echo
  echo "Where each variant's RSS was at its highest sample (MB, bench/rss-map.sh):"
  echo
  echo '```'
  for name in "${names[@]}"; do echo "$name: $(cut -d' ' -f2- "$work/$name.map" 2>/dev/null || true)"; done
  echo '```'
  echo
  echo "Every run (variant, round, RPS, CPU µs / request, peak RSS MB, wrk errors):"
  echo
  echo '```'
  cat "$work/runs"
  echo '```'
} >"$report_dir/report.md"
echo "Report: $report_dir/report.md"
