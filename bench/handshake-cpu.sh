#!/usr/bin/env bash
# Where the CPU of a full TLS handshake goes: the balancer's CPU per request with a new connection per
# request over TLS and over plain HTTP, and with kept-alive connections over both, so that the handshake
# (TLS minus HTTP, new connections) and the connection set-up (new minus kept-alive, HTTP) come apart;
# and what Balancer:Tls:StrictCiphers costs per handshake. Starts three sample backends and two balancers
# (the same build: one as shipped, one with StrictCiphers true), each with an https:// and an http://
# listener and the certificate deploy/tls/self-signed-cert.sh makes (EC P-256, as in bench/run.sh
# race-tls), then alternates rounds of wrk (new connections: -H 'Connection: close'; wrk does not resume
# TLS sessions) and prints the medians. CPU is the balancer process's user+system time (/proc/PID/stat)
# divided by the requests wrk completed, so a busy machine changes it less than it changes the rates.
#
# Usage: bench/handshake-cpu.sh [--rounds N] [--seconds S] [--connections C]   (defaults 5, 8, 64)
# Layout as bench/run.sh on 2-3 CPUs: balancers on the last CPU, wrk and backends on CPU 0.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=5 seconds=8 connections=64
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    *) echo "usage: bench/handshake-cpu.sh [--rounds N] [--seconds S] [--connections C]" >&2; exit 2 ;;
  esac
done
for tool in wrk curl taskset openssl; do
  command -v "$tool" >/dev/null || { echo "bench/handshake-cpu.sh needs '$tool'" >&2; exit 2; }
done

last=$(($(nproc) - 1))
proxy_cpu=$last
echo "Building (Release)..."
for project in src/SampleBackend src/Balancer; do
  out=$(dotnet build "$project" -c Release --nologo -v quiet 2>&1) || { echo "$out" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

bash deploy/tls/self-signed-cert.sh "$work/tls" localhost 127.0.0.1 >/dev/null
destinations=""
for name in A B C; do
  port=$(free_port) admin=$(free_port)
  taskset -c 0 dotnet src/SampleBackend/bin/Release/net10.0/SampleBackend.dll --urls "http://127.0.0.1:$port" \
    --admin-urls "http://127.0.0.1:$admin" --name "$name" >"$work/backend-$name.log" 2>&1 &
  pids+=($!)
  destinations+="${destinations:+,}\"$name\":{\"Address\":\"http://127.0.0.1:$port/\"}"
done

declare -A https_url http_url pid_of
variants=(default strict)
for variant in "${variants[@]}"; do
  https=$(free_port) http=$(free_port) management=$(free_port)
  strict=$([ "$variant" = strict ] && echo true || echo false)
  cat >"$work/$variant.json" <<JSON
{"Balancer":{"Listen":["https://127.0.0.1:$https","http://127.0.0.1:$http"],"Management":{"Listen":"http://127.0.0.1:$management"},
 "Shutdown":{"DrainDelay":"00:00:00"},"Tls":{"CertificatePath":"$work/tls/tls.crt","KeyPath":"$work/tls/tls.key","StrictCiphers":$strict}},
 "ReverseProxy":{"Routes":{"all":{"ClusterId":"backends","Match":{"Path":"{**catch-all}"}}},
  "Clusters":{"backends":{"LoadBalancingPolicy":"RoundRobin",
   "HealthCheck":{"Active":{"Enabled":true,"Interval":"00:00:02","Timeout":"00:00:01","Policy":"ConsecutiveFailures","Path":"/health"}},
   "Destinations":{$destinations}}}}}
JSON
  taskset -c "$proxy_cpu" dotnet src/Balancer/bin/Release/net10.0/Balancer.dll --config "$work/$variant.json" >"$work/$variant.log" 2>&1 &
  pid_of[$variant]=$!
  pids+=($!)
  https_url[$variant]="https://127.0.0.1:$https/"
  http_url[$variant]="http://127.0.0.1:$http/"
done

for variant in "${variants[@]}"; do
  for _ in $(seq 300); do
    curl -ksf -o /dev/null "${https_url[$variant]}" && break
    kill -0 "${pid_of[$variant]}" 2>/dev/null || { echo "balancer $variant exited:" >&2; cat "$work/$variant.log" >&2; exit 1; }
    sleep 0.2
  done
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks=$(getconf CLK_TCK)
# One run: prints "µs-of-CPU-per-request requests".
measure() {
  local pid=$1 url=$2 close=$3 before after out requests
  local header=()
  [ "$close" = close ] && header=(-H 'Connection: close')
  before=$(cpu_ticks "$pid")
  out=$(taskset -c 0 wrk -t1 -c"$connections" -d"${seconds}s" "${header[@]}" "$url" 2>&1)
  after=$(cpu_ticks "$pid")
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  awk -v a="$before" -v b="$after" -v t="$ticks" -v r="$requests" 'BEGIN { printf "%.1f %d\n", (b - a) / t / r * 1e6, r }'
}

# Which runs each variant gets: the cipher setting matters only when a handshake happens.
modes_of() {
  if [ "$1" = strict ]; then echo "https-new-connection"
  else echo "https-new-connection http-new-connection https-keep-alive http-keep-alive"; fi
}
run_mode() {
  local variant=$1 mode=$2 pid=${pid_of[$1]}
  case "$mode" in
    https-new-connection) measure "$pid" "${https_url[$variant]}" close ;;
    http-new-connection) measure "$pid" "${http_url[$variant]}" close ;;
    https-keep-alive) measure "$pid" "${https_url[$variant]}" keep ;;
    http-keep-alive) measure "$pid" "${http_url[$variant]}" keep ;;
  esac
}

# Warm-up, 20 s of each kind as bench/run.sh gives: the JIT's tiers and dynamic PGO need a few thousand
# requests of each, and a process on one CPU promotes methods slowly.
measured_seconds=$seconds
seconds=$((seconds > 20 ? seconds : 20))
for variant in "${variants[@]}"; do
  for mode in $(modes_of "$variant"); do run_mode "$variant" "$mode" >/dev/null; done
done
seconds=$measured_seconds

declare -A results
for round in $(seq "$rounds"); do
  for variant in "${variants[@]}"; do
    for mode in $(modes_of "$variant"); do
      line=$(run_mode "$variant" "$mode")
      results[$variant,$mode]+="${line%% *} "
      echo "round $round $variant $mode: ${line%% *} µs CPU per request (${line##* } requests)"
    done
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
echo "Medians of $rounds rounds, wrk -c$connections, $seconds s each; balancer CPU µs per request (load average $(cut -d' ' -f1-3 /proc/loadavg)):"
printf '| %-22s | %9s | %21s |\n' "mode" "default" "StrictCiphers: true"
for mode in $(modes_of default); do
  strict=$([ -n "${results[strict,$mode]:-}" ] && echo "${results[strict,$mode]}" | median || echo "")
  printf '| %-22s | %9s | %21s |\n' "$mode" "$(echo "${results[default,$mode]}" | median)" "$strict"
done
