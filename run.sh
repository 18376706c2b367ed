#!/usr/bin/env bash
# Runs the product on this machine: three sample backends (A, B, C on 5001-5003, gRPC on 6001-6003) and
# the balancer (proxy 8080, gRPC over h2c 8081, management 9091) with config/balancer.json. Ctrl-C stops
# every process it started.
#
# Usage:
#   ./run.sh [--prometheus] [--aot] [CONFIG_FILE]
#                                           build, start the backends, then the balancer once they answer;
#                                           print the URLs once the balancer answers.
#                                           --prometheus also runs Prometheus (Debian package) on
#                                           127.0.0.1:9090 with deploy/prometheus/local.yml.
#                                           --aot runs the balancer's Native AOT executable instead
#                                           (deploy/aot/publish.sh: about ten minutes the first time).
#   ./run.sh stop|start|restart A|B|C       from another terminal: stop, start or restart one backend of
#                                           the running ./run.sh (to watch the balancer fail over).
set -euo pipefail
cd "$(dirname "$0")"
out=.run
deadline_s=60

# A GET over bash's /dev/tcp, so that polling needs no curl: prints the status line and the body.
http_get() { # host port path
  exec 3<>"/dev/tcp/$1/$2" || return 1
  printf 'GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n' "$3" "$1" "$2" >&3
  timeout 5 cat <&3 || true
  exec 3<&-
}

answers_2xx() { # host port path
  local status
  status=$(http_get "$1" "$2" "$3" 2>/dev/null | head -n 1) || return 1
  [[ $status == HTTP/1.1\ 2* ]]
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

backend_port() {
  case "$1" in
    A) echo 5001 ;;
    B) echo 5002 ;;
    C) echo 5003 ;;
    *) echo "No backend '$1': use A, B or C." >&2; return 1 ;;
  esac
}

# Started in a session of its own, so that it outlives the terminal of `./run.sh start B`; its PID file is
# how the ./run.sh in the first terminal finds it again to stop it.
start_backend() {
  local name=$1 port
  port=$(backend_port "$name")
  if alive "$out/backend-$name.pid"; then
    echo "Backend $name is already running (pid $(cat "$out/backend-$name.pid"))."
    return 0
  fi
  setsid dotnet "$out/backend/SampleBackend.dll" --urls "http://127.0.0.1:$port" --grpc-urls "http://127.0.0.1:$((port + 1000))" \
    --name "$name" >>"$out/backend-$name.log" 2>&1 &
  echo $! >"$out/backend-$name.pid"
}

wait_backend() {
  local name=$1 port
  port=$(backend_port "$name")
  for _ in $(seq $((deadline_s * 5))); do
    answers_2xx 127.0.0.1 "$port" /health && return 0
    if ! alive "$out/backend-$name.pid"; then
      echo "Backend $name exited; its log ($out/backend-$name.log) ends with:" >&2
      tail -n 20 "$out/backend-$name.log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "Backend $name did not answer http://127.0.0.1:$port/health within $deadline_s s." >&2
  return 1
}

stop_pidfile() {
  local file=$1 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$file"
}

case "${1:-}" in
  stop | start | restart)
    [ $# -eq 2 ] || { echo "Usage: ./run.sh $1 A|B|C" >&2; exit 2; }
    backend_port "$2" >/dev/null
    [ -f "$out/backend/SampleBackend.dll" ] || { echo "Nothing built yet: start ./run.sh first." >&2; exit 1; }
    if [ "$1" != start ]; then
      stop_pidfile "$out/backend-$2.pid"
      echo "Backend $2 stopped."
    fi
    if [ "$1" != stop ]; then
      start_backend "$2"
      wait_backend "$2"
      echo "Backend $2 answers on http://127.0.0.1:$(backend_port "$2")/."
    fi
    exit 0
    ;;
esac

prometheus=false
aot=false
while [ "${1:-}" = --prometheus ] || [ "${1:-}" = --aot ]; do
  if [ "$1" = --prometheus ]; then prometheus=true; else aot=true; fi
  shift
done
config="${1:-config/balancer.json}"
mkdir -p "$out"
if alive "$out/run.pid"; then
  echo "./run.sh is already running (pid $(cat "$out/run.pid")); stop it with Ctrl-C in its terminal." >&2
  exit 1
fi
if $prometheus && ! command -v prometheus >/dev/null; then
  echo "--prometheus needs Prometheus: sudo apt-get install prometheus" >&2
  exit 1
fi
echo $$ >"$out/run.pid"

echo "Building (Release)..."
dotnet publish src/SampleBackend -c Release -o "$out/backend" --nologo -v quiet
if $aot; then
  balancer_command=("$(deploy/aot/publish.sh)")
else
  dotnet publish src/Balancer -c Release -o "$out/balancer" --nologo -v quiet
  balancer_command=(dotnet "$out/balancer/Balancer.dll")
fi

balancer=""
stop() {
  trap - INT TERM EXIT
  echo
  echo "Stopping..."
  if [ -n "$balancer" ]; then kill -TERM "$balancer" 2>/dev/null || true; fi
  for name in A B C; do stop_pidfile "$out/backend-$name.pid"; done
  stop_pidfile "$out/prometheus.pid"
  wait 2>/dev/null || true
  rm -f "$out/run.pid"
  echo "All stopped."
}
trap stop INT TERM EXIT

: >"$out/balancer.log"
for name in A B C; do : >"$out/backend-$name.log"; start_backend "$name"; done
# The balancer starts only once every backend answers its health check, so none is first shown Down.
printf "Waiting for backends A, B, C..."
for name in A B C; do wait_backend "$name"; done
echo " up."

# Process substitution, not a pipe, so that $! is the balancer itself.
# The runtime setting the deployment files give it (docs/configuration.md, runtime settings).
DOTNET_TC_CallCountingDelayMs=0 "${balancer_command[@]}" --config "$config" > >(tee "$out/balancer.log") 2>&1 &
balancer=$!
printf "Waiting for the balancer..."
# Its listeners are whatever the config says: read them from its log, and find the management one by
# its /healthz answer (the proxy forwards /healthz to a backend instead); an h2c:// listener (HTTP/2 only)
# gives no HTTP/1.1 answer at all.
proxy_url="" management_url="" h2c_url=""
for _ in $(seq $((deadline_s * 5))); do
  kill -0 "$balancer" 2>/dev/null || { echo; echo "The balancer exited; see $out/balancer.log." >&2; exit 1; }
  while read -r url; do
    hostport=${url#http://}
    body=$(http_get "${hostport%:*}" "${hostport##*:}" /healthz 2>/dev/null || true)
    if [[ $body == HTTP/1.1\ 200* ]] && ! grep -qi '^X-Backend:' <<<"$body" && [[ $body == *$'\n'ok* ]]; then
      management_url=$url
    elif [[ $body != HTTP/1.1\ * ]]; then
      h2c_url=$url
    elif [ -z "$proxy_url" ]; then
      proxy_url=$url
    fi
  done < <(sed -n 's/.*Now listening on: \(http:[^ ]*\).*/\1/p' "$out/balancer.log" | sed 's#//0\.0\.0\.0:#//127.0.0.1:#; s#//\[::\]:#//127.0.0.1:#; s#//localhost:#//127.0.0.1:#')
  [ -n "$management_url" ] && [ -n "$proxy_url" ] && break
  proxy_url="" management_url="" h2c_url=""
  sleep 0.2
done
[ -n "$management_url" ] || { echo; echo "The balancer did not answer within $deadline_s s; see $out/balancer.log." >&2; exit 1; }
echo " up."

if $prometheus; then
  mkdir -p "$out/prometheus"
  prometheus --config.file=deploy/prometheus/local.yml --storage.tsdb.path="$out/prometheus" \
    --web.listen-address=127.0.0.1:9090 >"$out/prometheus.log" 2>&1 &
  echo $! >"$out/prometheus.pid"
  for _ in $(seq $((deadline_s * 5))); do
    answers_2xx 127.0.0.1 9090 /-/ready && break
    alive "$out/prometheus.pid" || { echo "Prometheus exited (is port 9090 taken? sudo systemctl stop prometheus); see $out/prometheus.log." >&2; exit 1; }
    sleep 0.2
  done
fi

grpc_line=""
[ -n "$h2c_url" ] && grpc_line="  Balancer (h2c, gRPC):  $h2c_url   try: dotnet $out/backend/SampleBackend.dll --grpc-call $h2c_url
"
prometheus_line=""
$prometheus && prometheus_line="  Prometheus:            http://127.0.0.1:9090/
"
cat <<MSG

  Balancer (proxy):      $proxy_url/
${grpc_line}  Status page:           $management_url/
  Status API:            $management_url/status
  Metrics:               $management_url/metrics
  Backends A, B, C:      http://127.0.0.1:5001/  http://127.0.0.1:5002/  http://127.0.0.1:5003/
  Their gRPC ports:      127.0.0.1:6001  127.0.0.1:6002  127.0.0.1:6003 (HTTP/2 cleartext)
${prometheus_line}  Config (live reload):  $config
  Logs:                  $out/

  Stop or restart a backend from another terminal: ./run.sh stop B, ./run.sh start B, ./run.sh restart B
  Press Ctrl-C to stop everything.
MSG
wait "$balancer"
