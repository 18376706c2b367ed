#!/usr/bin/env bash
# Benchmark harness: builds Release, starts three sample backends, the balancer, bare YARP, NGINX and
# HAProxy on loopback as each experiment needs them, drives load, stops everything by PID and writes
# bench/results/<experiments>/report.md with SVG charts (full/ for the default set; a new run replaces the old).
#
# Usage: bench/run.sh [experiment...] [--smoke] [--duration S] [--mixed-duration S] [--runs N] [--warmup S] [--out DIR]
#   experiments: distribution qos rates heterogeneous mixed race race-tls race-unpinned warmup overhead observability (default: these), soak and scale (only when named)
#   scale: 3 to 10,000 destinations (smoke: 3, 100, 300; --scale-counts 3,100,1000 for others); --duration sets its wrk runs (default 10 s, smoke 2 s);
#          --scale-policies RoundRobin,IpHash: only these in its paced measure (default all three, smoke RoundRobin)
#   bench/run.sh profile [...]   the CPU profile and allocations of the balancer beside bare YARP: bench/profile.sh's options
#   bench/run.sh cost [...]      CPU time and bytes allocated per request, counted inside each process, beside bare YARP: bench/cost.sh's options
#   bench/run.sh wakeups [...]   context switches per second by thread, idle and under load, and the timers queued, beside bare YARP: bench/wakeups.sh's options
#   bench/run.sh syscalls [...]  system calls per request by call, the balancer beside bare YARP and NGINX: bench/syscalls.sh's options
#   --smoke            a few seconds per experiment, soak included (CI); numbers are not measurements
#   --no-build         use the Release build already there (the test suite runs the smoke run right after building)
#   --soak-duration S  the soak (default 600), --soak-reload-every S (30), --soak-restart-every S (120)
#   --duration S       seconds per timed run (race, overhead, heterogeneous, rate steps; default 10, overhead 5, smoke 1)
#   --mixed-duration S the mixed run (default 60; the paper's 5 minutes: 300)
#   --runs N           runs per proxy in race/overhead/heterogeneous (default 3, overhead 6, smoke 1)
#   --warmup S         seconds of load per proxy before race/overhead measure it (default 20, smoke 1)
#   --load-cpus L --proxy-cpus L --backend-cpus L   override the CPU layout (taskset lists)
#   --aot              race, race-unpinned and warmup also run the balancer's Native AOT build as balancer-aot
#                      (published by deploy/aot/publish.sh into artifacts/aot/, once: about ten minutes); report folder -aot
#   BENCH_BALANCER_ENV="NAME=VALUE ..."   more environment for the balancer's processes alone (a runtime trace: bench/PauseWatch)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = profile ]; then shift; exec bench/profile.sh "$@"; fi
if [ "${1:-}" = cost ]; then shift; exec bench/cost.sh "$@"; fi
if [ "${1:-}" = wakeups ]; then shift; exec bench/wakeups.sh "$@"; fi
if [ "${1:-}" = syscalls ]; then shift; exec bench/syscalls.sh "$@"; fi

for tool in wrk h2load nginx haproxy openssl taskset; do
  command -v "$tool" >/dev/null || PATH="$PATH:/usr/sbin" command -v "$tool" >/dev/null || {
    echo "bench/run.sh needs '$tool': apt-get install wrk nghttp2-client nginx-light haproxy openssl util-linux" >&2; exit 2; }
done
export PATH="$PATH:/usr/sbin"

# CPU layout, the same for every proxy: the proxy under test gets CPUs of its own, as a load balancer VM
# has in the papers' topology, so that what it costs is not mixed with what the backends and the load
# generator cost. 4+ CPUs: load 0, backends 1, proxies 2..n-1. 2-3 CPUs: load and backends share 0,
# proxies 1..n-1. 1 CPU: everything shares it.
cpus=$(nproc)
last=$((cpus - 1))
if [ "$cpus" -ge 4 ]; then load=0; backends=1; proxies="2-$last"
elif [ "$cpus" -ge 2 ]; then load=0; backends=0; proxies=$([ "$last" -eq 1 ] && echo 1 || echo "1-$last")
else load=0; backends=0; proxies=0; fi
command_line="bench/run.sh $*"
build=true
aot=false
args=()
for arg in "$@"; do
  if [ "$arg" = --no-build ]; then build=false
  elif [ "$arg" = --aot ]; then aot=true
  else args+=("$arg"); fi
done
set -- ${args[@]+"${args[@]}"}
for ((i = 0; i < ${#args[@]}; i++)); do
  [ "${args[$i]}" = "--load-cpus" ] && [ $((i + 1)) -lt ${#args[@]} ] && load="${args[$((i + 1))]}"
done

if $build; then
  echo "Building (Release)..."
  for project in src/SampleBackend src/Balancer bench/BareYarp bench/Bench bench/PauseWatch; do
    out=$(dotnet build "$project" -c Release --nologo -v quiet 2>&1) || { echo "$out" >&2; exit 1; }
  done
fi

if $aot; then
  aot_executable=$(deploy/aot/publish.sh) || { echo "bench/run.sh --aot: the Native AOT publish failed" >&2; exit 1; }
  args+=(--aot-executable "$aot_executable")
  set -- "${args[@]}"
fi

pidfile=$(mktemp)
harness=""
# shellcheck disable=SC2317  # called by the trap
stop() {
  trap - INT TERM EXIT
  if [ -n "$harness" ] && kill -0 "$harness" 2>/dev/null; then
    kill -TERM "$harness" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$harness" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$harness" 2>/dev/null || true
  fi
  # Whatever the harness started and could not stop itself (it was killed, or crashed). Proxies and
  # backends lead their own process group (NGINX's workers are in it): kill the group, then the PID.
  while read -r pid; do
    kill -KILL -- "-$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
  done <"$pidfile"
  rm -f "$pidfile"
}
trap stop INT TERM EXIT

status=0
BENCH_COMMAND="$command_line" taskset -c "$load" dotnet bench/Bench/bin/Release/net10.0/Bench.dll --repo . --out bench/results \
  --load-cpus "$load" --proxy-cpus "$proxies" --backend-cpus "$backends" --pid-file "$pidfile" "$@" &
harness=$!
wait "$harness" || status=$?
exit $status
