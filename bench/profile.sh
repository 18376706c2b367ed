#!/usr/bin/env bash
# CPU profile and allocations per request of the balancer beside bare YARP (bench/BareYarp), each in front
# of the three sample backends under wrk -c64. perf samples the proxy's CPU with call stacks (the .NET perf
# map names JIT-compiled methods); dotnet-counters reads the bytes the GC saw allocated over the same window.
# Writes bench/results/profile/report.md (or --out DIR/profile/report.md).
#
# Usage: bench/profile.sh [--warmup S] [--duration S] [--top N] [--out DIR] [--smoke] [--proxy-cpus L] [-- balancer settings...]
#   --warmup S    seconds of wrk -c64 before profiling (default 40; the JIT keeps promoting code for ~30 s)
#   --duration S  seconds profiled (default 15)
#   --top N       rows of the inclusive-cost table (default 15)
#   --smoke       2 s warm-up, 3 s profile: checks the script works, numbers mean nothing
#   -- ...        extra --Key value settings for the balancer (e.g. -- --Balancer:Metrics:Enabled false)
# Needs perf (Debian: linux-perf), wrk and dotnet-counters (dotnet tool install -g dotnet-counters).
set -euo pipefail
cd "$(dirname "$0")/.."

warmup=40 duration=15 top=15 out=bench/results smoke=0
cpus=$(nproc)
proxy_cpus=$([ "$cpus" -ge 2 ] && echo $((cpus - 1)) || echo 0)
load_cpus=0
balancer_settings=()
while [ $# -gt 0 ]; do
  case "$1" in
    --warmup) warmup=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --top) top=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --proxy-cpus) proxy_cpus=$2; shift 2 ;;
    --smoke) smoke=1; warmup=2; duration=3; shift ;;
    --) shift; balancer_settings=("$@"); break ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

export PATH="$PATH:/usr/sbin:$HOME/.dotnet/tools"
for tool in perf wrk dotnet-counters; do  # and the .NET SDK, which builds the allocation sampler (bench/AllocSampler)
  command -v "$tool" >/dev/null || { echo "bench/profile.sh needs '$tool' (apt-get install linux-perf wrk; dotnet tool install -g dotnet-counters)" >&2; exit 2; }
done

echo "Building (Release)..."
for project in src/SampleBackend src/Balancer bench/BareYarp bench/AllocSampler; do
  build=$(dotnet build "$project" -c Release --nologo -v quiet 2>&1) || { echo "$build" >&2; exit 1; }
done

report_dir="$out/profile$([ "$smoke" = 1 ] && echo -smoke || true)"
mkdir -p "$report_dir"
# shellcheck source=bench/lib.sh
. bench/lib.sh
# W^X off: with it on, JIT-compiled code runs from a memfd mapping that perf cannot match to the perf map.
export DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0
# The runtime setting the deployment files start the balancer with (bare YARP gets it too).
export DOTNET_TC_CallCountingDelayMs=0
start_backends "$load_cpus"

# Profiles one proxy: warm-up, then wrk for the window while perf and dotnet-counters watch it.
profile() { # name pid port
  local name=$1 pid=$2 port=$3 url="http://127.0.0.1:$3/"
  echo "[$(date +%T)] $name: warm-up ${warmup} s"
  taskset -c "$load_cpus" wrk -t1 -c64 -d"${warmup}s" "$url" >/dev/null
  # dotnet-counters first: it takes seconds to attach on a busy machine, and only rows written while
  # wrk runs count.
  local csv="$work/$name.counters.csv"
  taskset -c "$load_cpus" dotnet-counters collect -p "$pid" --counters System.Runtime --format csv \
    -o "$csv" --refresh-interval 1 >/dev/null 2>&1 &
  local counters=$!
  for _ in $(seq 300); do grep -q total_allocated "$csv" 2>/dev/null && break; sleep 0.1; done
  echo "[$(date +%T)] $name: profiling ${duration} s"
  local ticks_before; ticks_before=$(cpu_ticks "$pid")
  local from; from=$(date +%T)
  taskset -c "$load_cpus" wrk -t1 -c64 -d"${duration}s" "$url" >"$work/$name.wrk" &
  local wrk=$!
  taskset -c "$load_cpus" dotnet bench/AllocSampler/bin/Release/net10.0/AllocSampler.dll "$pid" "$((duration > 2 ? duration - 1 : duration))" "$top" >"$work/$name.allocs" 2>"$work/$name.allocs.log" &
  local sampler=$!
  perf record -F 499 -g -p "$pid" -o "$work/$name.perf.data" -- sleep "$((duration > 2 ? duration - 1 : duration))" >/dev/null 2>"$work/$name.perf.log"
  wait "$sampler" || true
  wait "$wrk"
  local to; to=$(date +%T)
  local ticks=$(( $(cpu_ticks "$pid") - ticks_before ))
  kill -TERM "$counters" 2>/dev/null || true
  wait "$counters" || true
  local requests seconds
  requests=$(awk '/requests in/ { print $1 }' "$work/$name.wrk")
  seconds=$(awk '/requests in/ { sub(/s,/, "", $4); print $4 }' "$work/$name.wrk")
  local hz; hz=$(getconf CLK_TCK)
  # The proxy's CPU (user + system) per request over the wrk run; the profile's shares divide it up.
  local us_per_request; us_per_request=$(awk -v t="$ticks" -v hz="$hz" -v r="$requests" 'BEGIN { printf "%.2f", t / hz / r * 1e6 }')
  local rps; rps=$(awk -v r="$requests" -v s="$seconds" 'BEGIN { printf "%.0f", r / s }')
  # Bytes allocated per second, from the rows written strictly inside the wrk run, over wrk's RPS.
  local bytes; bytes=$(awk -F, -v from="$from" -v to="$to" -v rps="$rps" '
    /total_allocated/ { split($1, t, " "); if (t[2] > from && t[2] < to) { sum += $NF; n++ } }
    END { if (n && rps > 0) printf "%.0f", sum / n / rps; else print "n/a" }' "$csv")
  echo "$name|$rps|$us_per_request|$bytes|$(rss_mb "$pid")" >>"$work/summary"
  # Inclusive ("children") share per symbol, hottest first. Named frames only: the runtime's own native
  # code (libcoreclr.so: thread starts, GC, stubs) ships without symbols and shows in the library table.
  perf report -i "$work/$name.perf.data" --children --stdio --sort dso,symbol -g none --percent-limit 0.05 2>/dev/null \
    | awk -v us="$us_per_request" '
      /^ *[0-9.]+%/ {
        children = $1; self = $2; sub(/%/, "", children); sub(/%/, "", self)
        line = $0; sub(/^ *[0-9.]+% +[0-9.]+% +/, "", line)
        if (line ~ /\[\.\] 0x[0-9a-f]+/ || line ~ /\[k\]/) next
        dso = line; sub(/ +\[[.k]\] .*/, "", dso)
        sym = line; sub(/^.*\[[.k]\] +/, "", sym); sub(/ +- +-? *$/, "", sym); sub(/ +$/, "", sym)
        # "instance void [Asm] Ns.Type+<Method>d__8::MoveNext()[Tier]" -> "Type.Method"; async plumbing
        # (state machine boxes, ExecutionContext, builders) and thread starts run under everything: left out.
        if (sym ~ /AsyncStateMachineBox|AsyncMethodBuilderCore|AsyncTaskMethodBuilder|ExecutionContext::Run|ThreadPoolWorkQueue|start_thread|PortableThreadPool|SocketAsyncEngine::EventLoop|Thread::StartCallback|Thread::StartCore/) next
        if (sym ~ /::/) {
          s = sym; sub(/\(.*$/, "", s); n = split(s, words, " "); s = words[n]
          split(s, parts, "::"); type = parts[1]; method = parts[2]
          sub(/`[0-9]+.*$/, "", type)
          if (match(type, /\+<[^>]+>/)) { method = substr(type, RSTART + 2, RLENGTH - 3); type = substr(type, 1, RSTART - 1) }
          sub(/^.*\./, "", type); sub(/^.*\+/, "", type)
          asm = (n > 1 && words[n - 1] ~ /^\[.*\]$/) ? substr(words[n - 1], 2, length(words[n - 1]) - 2) : dso
          sym = type "." method " (" asm ")"
        }
        if (seen[sym]++) next
        printf "%s|%s|%.2f|%s\n", children, self, children / 100 * us, sym
      }' >"$work/$name.inclusive"
  # Own (self) samples by library: the kernel, the runtime, JIT-compiled code, precompiled framework code.
  perf report -i "$work/$name.perf.data" --no-children --stdio --sort dso -g none 2>/dev/null \
    | awk -v us="$us_per_request" '/^ *[0-9.]+%/ { p = $1; sub(/%/, "", p); $1 = ""; sub(/^ +/, ""); printf "%s|%.2f|%s\n", p, p / 100 * us, $0 }' \
    | head -n 8 >"$work/$name.dso"
  # Samples by the assembly whose code was running: from the leaf, the first managed frame outside CoreLib
  # (collections, tasks and cancellation count for their caller), so the balancer's own code, Polly, YARP,
  # Kestrel and SocketsHttpHandler each get what they spend themselves. Read while the process (and so its
  # perf map) is still there.
  perf script -i "$work/$name.perf.data" 2>/dev/null | awk -v us="$us_per_request" '
    BEGIN { RS = ""; FS = "\n" }
    {
      n++; bucket = ""
      for (i = 2; i <= NF; i++) {
        if (match($i, /\[[A-Za-z][A-Za-z0-9.-]*\] /)) {
          asm = substr($i, RSTART + 1, RLENGTH - 3)
          if (asm == "System.Private.CoreLib" || (asm == "unknown" && $i !~ /perf-[0-9]+\.map/)) continue
          bucket = (asm == "unknown") ? "(JIT-compiled code or stubs perf could not name)" : asm
          break
        }
      }
      if (bucket == "") bucket = ($2 ~ /kernel\.kallsyms/) ? "(kernel, no managed caller found)" : "(runtime and native code, no managed caller found)"
      count[bucket]++
    }
    END { for (b in count) printf "%.2f|%.2f|%s\n", 100 * count[b] / n, count[b] / n * us, b }' \
    | sort -t'|' -k1,1 -g -r | head -n 14 >"$work/$name.assemblies"
}

balancer_port=$(free_port); management_port=$(free_port); bare_port=$(free_port)
write_config "$balancer_port" "$management_port" >"$work/balancer.json"
write_config "$bare_port" "$(free_port)" >"$work/bare.json"
bare_pid=$(start bare-yarp "$proxy_cpus" dotnet bench/BareYarp/bin/Release/net10.0/BareYarp.dll --config "$work/bare.json")
wait_http "http://127.0.0.1:$bare_port/"
profile bare-yarp "$bare_pid" "$bare_port"
kill -TERM "$bare_pid"
balancer_pid=$(start balancer "$proxy_cpus" dotnet src/Balancer/bin/Release/net10.0/Balancer.dll --config "$work/balancer.json" "${balancer_settings[@]}")
wait_http "http://127.0.0.1:$management_port/healthz"
wait_http "http://127.0.0.1:$balancer_port/"
profile balancer "$balancer_pid" "$balancer_port"

# A table that cannot be made (a tool that gathered nothing) must not cost the rest of the report.
set +e
{
  echo "# CPU profile: the balancer beside bare YARP"
  echo
  [ "$smoke" = 1 ] && { echo "> **Smoke run**: a few seconds only; the numbers are not measurements."; echo; }
  report_provenance profile.sh "$@"
  echo "- Each proxy alone on CPU $proxy_cpus, wrk -t1 -c64 and the three backends on CPU $load_cpus; ${warmup} s of warm-up, then ${duration} s profiled with \`perf record -F 499 -g\` (DOTNET_PerfMapEnabled=1, DOTNET_EnableWriteXorExecute=0; both proxies with DOTNET_TC_CallCountingDelayMs=0 as deployed) and \`dotnet-counters collect\` (System.Runtime) while wrk runs."
  echo "- Balancer settings: ${balancer_settings[*]:-(as shipped: metrics on, tracing off)}"
  echo
  echo "| proxy | RPS | CPU µs / request | bytes allocated / request | RSS at the end (MB) |"
  echo "|---|---:|---:|---:|---:|"
  while IFS='|' read -r name rps us bytes rss _; do echo "| $name | $rps | $us | $bytes | $rss |"; done <"$work/summary"
  for name in balancer bare-yarp; do
    echo
    echo "## $name: top $top inclusive costs"
    echo
    echo "Share of the proxy's CPU samples in the symbol and everything it calls (inclusive), its own (self), and that share of the CPU µs per request."
    echo
    echo "| inclusive | self | µs / request | symbol |"
    echo "|---:|---:|---:|---|"
    head -n "$top" "$work/$name.inclusive" | while IFS='|' read -r inc self us sym; do echo "| $inc% | $self% | $us | \`$sym\` |"; done
    echo
    echo "Top $top by own (self) samples, the same symbols:"
    echo
    echo "| self | µs / request | symbol |"
    echo "|---:|---:|---|"
    sort -t'|' -k2,2 -g -r "$work/$name.inclusive" | head -n "$top" | while IFS='|' read -r _ self _ sym; do
      echo "| $self% | $(awk -v s="$self" -v us="$(cut -d'|' -f3 <<<"$(grep "^$name|" "$work/summary")")" 'BEGIN { printf "%.2f", s / 100 * us }') | \`$sym\` |"; done
    echo
    echo "Allocations by type (the runtime's allocation samples, one per ~100 KB, over the same window; the share of sampled bytes times the bytes a request allocates):"
    echo
    echo "| share | bytes / request | type |"
    echo "|---:|---:|---|"
    local_bytes=$(grep "^$name|" "$work/summary" | cut -d'|' -f4)
    { grep -v '^total|' "$work/$name.allocs" || echo "0|(no samples: $(tr '\n' ' ' <"$work/$name.allocs.log" | cut -c1-200))"; } | while IFS='|' read -r share type; do
      echo "| $share% | $(awk -v s="$share" -v b="$local_bytes" 'BEGIN { if (b == "n/a") print "n/a"; else printf "%.0f", s / 100 * b }') | \`$type\` |"; done
    echo
    echo "Own samples by library (the kernel's share is mostly socket I/O; libcoreclr.so is the runtime: GC, type checks, stubs):"
    echo
    echo "| self | µs / request | library |"
    echo "|---:|---:|---|"
    while IFS='|' read -r p us dso; do echo "| $p% | $us | $dso |"; done <"$work/$name.dso"
    echo
    echo "Samples by the assembly whose code ran (from the leaf, the first managed frame outside System.Private.CoreLib; a stack perf could not follow past the kernel or a native library has no managed caller):"
    echo
    echo "| share | µs / request | assembly |"
    echo "|---:|---:|---|"
    while IFS='|' read -r p us asm; do echo "| $p% | $us | $asm |"; done <"$work/$name.assemblies"
  done
} >"$report_dir/report.md"
# The full inclusive lists, for digging further (not committed: bench/results/*/raw is ignored).
mkdir -p "$report_dir/raw"
cp "$work"/*.allocs "$work"/*.assemblies "$work"/*.inclusive "$work"/*.counters.csv "$work"/*.wrk "$report_dir/raw/" 2>/dev/null || true
echo "Report: $report_dir/report.md"
