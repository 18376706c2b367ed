#!/usr/bin/env bash
# System calls per proxied request, by call, for the balancer, bare YARP (bench/BareYarp) and NGINX (one
# worker, the race's proxy settings): each alone on the proxy CPU in front of the three sample backends, warmed
# up with wrk -c64, then counted by `perf stat -e syscalls:sys_enter_*` over a fixed number of requests
# (h2load --h1). Counts, not times: what each proxy asks of the kernel per request does not move with the
# machine's load the way its CPU time does. Prints a table; writes nothing.
#
# Usage: bench/syscalls.sh [--requests N] [--connections C] [--warmup S] [--proxies 'balancer bare-yarp nginx'] [-- balancer settings...]
#   -- ...   extra --Key value settings for the balancer (e.g. -- --Balancer:Metrics:Enabled false)
# Needs perf (linux-perf) with the syscalls tracepoints, wrk, h2load (nghttp2-client) and nginx.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin"

requests=20000 connections=64 warmup=20 proxies="balancer bare-yarp nginx" balancer_settings=()
while [ $# -gt 0 ]; do
  case "$1" in
    --requests) requests=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --proxies) proxies=$2; shift 2 ;;
    --) shift; balancer_settings=("$@"); break ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
for tool in perf wrk h2load nginx; do
  command -v "$tool" >/dev/null || { echo "bench/syscalls.sh needs '$tool' (apt-get install linux-perf wrk nghttp2-client nginx-light)" >&2; exit 2; }
done
echo "Building (Release)..." >&2
for project in src/SampleBackend src/Balancer bench/BareYarp; do
  build=$(dotnet build "$project" -c Release --nologo -v quiet 2>&1) || { echo "$build" >&2; exit 1; }
done

# shellcheck source=bench/lib.sh
. bench/lib.sh
cpus=$(nproc)
proxy_cpus=$([ "$cpus" -ge 2 ] && echo $((cpus - 1)) || echo 0)
load_cpus=0
export DOTNET_TC_CallCountingDelayMs=0
start_backends "$load_cpus"

calls=(recvfrom sendto readv writev getsockopt epoll_wait epoll_ctl futex sched_yield)
events=$(printf 'syscalls:sys_enter_%s,' "${calls[@]}")
events="raw_syscalls:sys_enter,context-switches,${events%,}"

# NGINX as the race runs it (bench/Bench/Processes/ProxyConfigs.cs), with one worker for the one proxy CPU.
nginx_config() { # port directory
  local temp
  for temp in client_body proxy fastcgi uwsgi scgi; do mkdir -p "$2/${temp}_temp"; done
  cat <<EOF
worker_processes 1;
pid $2/nginx.pid;
error_log $2/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $2/client_body_temp; proxy_temp_path $2/proxy_temp; fastcgi_temp_path $2/fastcgi_temp;
  uwsgi_temp_path $2/uwsgi_temp; scgi_temp_path $2/scgi_temp;
  keepalive_requests 100000;
  upstream backends {
    server 127.0.0.1:${backend_ports[0]}; server 127.0.0.1:${backend_ports[1]}; server 127.0.0.1:${backend_ports[2]};
    keepalive 256; keepalive_requests 100000;
  }
  server {
    listen 127.0.0.1:$1 backlog=4096;
    location / {
      proxy_pass http://backends; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$http_host;
    }
  }
}
EOF
}

header="| proxy | RPS | all | context switches |"
rule="|---|---:|---:|---:|"
for call in "${calls[@]}"; do header="$header $call |"; rule="$rule---:|"; done
rows=()
for proxy in $proxies; do
  port=$(free_port)
  case $proxy in
    balancer|bare-yarp)
      write_config "$port" "$(free_port)" >"$work/$proxy.json"
      dll=src/Balancer/bin/Release/net10.0/Balancer.dll
      [ "$proxy" = bare-yarp ] && dll=bench/BareYarp/bin/Release/net10.0/BareYarp.dll
      settings=()
      [ "$proxy" = balancer ] && settings=(${balancer_settings[@]+"${balancer_settings[@]}"})
      pid=$(start "$proxy" "$proxy_cpus" dotnet "$dll" --config "$work/$proxy.json" ${settings[@]+"${settings[@]}"})
      counted=$pid ;;
    nginx)
      mkdir -p "$work/nginx"
      nginx_config "$port" "$work/nginx" >"$work/nginx/nginx.conf"
      # In the foreground, so that its master is the PID the cleanup stops; the worker is counted.
      pid=$(start nginx "$proxy_cpus" nginx -c "$work/nginx/nginx.conf" -g 'daemon off;')
      wait_http "http://127.0.0.1:$port/"
      counted=$(pgrep -P "$pid" | paste -sd,) ;;
    *) echo "unknown proxy $proxy (balancer, bare-yarp, nginx)" >&2; exit 2 ;;
  esac
  wait_http "http://127.0.0.1:$port/"
  echo "[$(date +%T)] $proxy: warm-up ${warmup} s, then $requests requests counted" >&2
  taskset -c "$load_cpus" wrk -t1 -c"$connections" -d"${warmup}s" "http://127.0.0.1:$port/" >/dev/null
  perf stat -x, -e "$events" -p "$counted" -o "$work/$proxy.perf" -- \
    taskset -c "$load_cpus" h2load --h1 -t1 -c"$connections" -n"$requests" "http://127.0.0.1:$port/" >"$work/$proxy.h2load"
  grep -q " $requests succeeded" "$work/$proxy.h2load" || echo "$proxy: not every request succeeded: $(grep succeeded "$work/$proxy.h2load")" >&2
  rps=$(awk '/^finished in/ { gsub(/,/, ""); print $4 }' "$work/$proxy.h2load")
  rows+=("$(awk -F, -v n="$requests" -v name="$proxy" -v rps="$rps" -v order="${calls[*]}" '
    $1 ~ /^[0-9]+$/ { key = $3; sub(/^syscalls:sys_enter_/, "", key); count[key] = $1 }
    END {
      printf "| %s | %.0f | %.2f | %.3f |", name, rps, count["raw_syscalls:sys_enter"] / n, count["context-switches"] / n
      k = split(order, names, " "); for (i = 1; i <= k; i++) printf " %.3f |", count[names[i]] / n
    }' "$work/$proxy.perf")")
  kill -TERM "$pid"
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
done

echo "System calls per request, $requests requests of h2load --h1 -c$connections after ${warmup} s of wrk -c$connections; each proxy alone on CPU $proxy_cpus, h2load and the backends on CPU $load_cpus; load average $(cut -d' ' -f1 /proc/loadavg)"
echo
echo "$header"
echo "$rule"
printf '%s\n' "${rows[@]}"
