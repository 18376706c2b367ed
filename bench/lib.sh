# Shared by bench/profile.sh and bench/settings.sh: the three sample backends, balancer configs in front of
# them, processes tracked by PID in a temporary directory and stopped by the EXIT trap.
work=$(mktemp -d)
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  local pids; pids=$(cat "$work/pids" 2>/dev/null || true)
  for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $pids; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "/tmp/perf-$pid.map" "/tmp/perfinfo-$pid.map"
  done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Below the kernel's ephemeral range (32768 and up by default), so that no outgoing connection of the load
# generators or the proxies holds the port by the time the process binds it.
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 12000))
    ss -Htan "sport = :$port" | grep -q . || { echo "$port"; return; }
  done
}

wait_http() {
  for _ in $(seq 600); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "$1 did not answer within 60 s" >&2; return 1
}

start() { # name cpus command...
  local name=$1 cpu=$2; shift 2
  setsid taskset -c "$cpu" "$@" >"$work/$name.log" 2>&1 &
  echo $! >>"$work/pids"
  echo $!
}

backend_ports=()
start_backends() { # cpus
  local name port
  for name in A B C; do
  port=$(free_port)
    start "backend-$name" "$1" dotnet src/SampleBackend/bin/Release/net10.0/SampleBackend.dll \
      --urls "http://127.0.0.1:$port" --admin-urls "http://127.0.0.1:$(free_port)" --name "$name" >/dev/null
    backend_ports+=("$port")
  done
  for port in "${backend_ports[@]}"; do wait_http "http://127.0.0.1:$port/health"; done
}

write_config() { # port management-port
  cat <<EOF
{
  "Balancer": { "Listen": "http://127.0.0.1:$1", "Management": { "Listen": "http://127.0.0.1:$2" }, "Shutdown": { "DrainDelay": "00:00:00" } },
  "ReverseProxy": {
    "Routes": { "all": { "ClusterId": "backends", "Match": { "Path": "{**catch-all}" } } },
    "Clusters": {
      "backends": {
        "LoadBalancingPolicy": "RoundRobin",
        "HealthCheck": { "Active": { "Enabled": true, "Interval": "00:00:02", "Timeout": "00:00:01", "Policy": "ConsecutiveFailures", "Path": "/health" } },
        "Destinations": {
          "A": { "Address": "http://127.0.0.1:${backend_ports[0]}/" },
          "B": { "Address": "http://127.0.0.1:${backend_ports[1]}/" },
          "C": { "Address": "http://127.0.0.1:${backend_ports[2]}/" }
        }
      }
    }
  }
}
EOF
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }


# The first line of every side-experiment report: how to rerun it and what it ran on.
report_provenance() {
  local script=$1
  shift
  echo "- Command: \`bench/$script $*\`; $(date -u '+%Y-%m-%d %H:%M') UTC; commit \`$(git rev-parse --short HEAD)\`$([ -n "$(git status --porcelain)" ] && echo ' (with uncommitted changes)'); load average $(cut -d' ' -f1 /proc/loadavg)"
}
