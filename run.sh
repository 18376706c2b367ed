#!/usr/bin/env bash
# Runs the product on this machine: three sample backends (A, B, C on 5001-5003) and the balancer
# (proxy 8080, management 9091) with config/balancer.json. Ctrl-C stops every process it started.
# Usage: ./run.sh [CONFIG_FILE]
set -euo pipefail
cd "$(dirname "$0")"
config="${1:-config/balancer.json}"
out=.run
mkdir -p "$out"

echo "Building (Release)..."
dotnet publish src/SampleBackend -c Release -o "$out/backend" --nologo -v quiet
dotnet publish src/Balancer -c Release -o "$out/balancer" --nologo -v quiet

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "Stopping ${#pids[@]} processes..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "All stopped."
}
trap stop INT TERM EXIT

for i in 1 2 3; do
  name=$(printf "\\x$(printf %x $((64 + i)))")
  port=$((5000 + i))
  dotnet "$out/backend/SampleBackend.dll" --urls "http://127.0.0.1:$port" --name "$name" >"$out/backend-$name.log" 2>&1 &
  pids+=($!)
done
# Process substitution, not a pipe, so that $! is the balancer itself and Ctrl-C reaches it.
dotnet "$out/balancer/Balancer.dll" --config "$config" > >(tee "$out/balancer.log") 2>&1 &
pids+=($!)

cat <<MSG

  Balancer (proxy):      http://127.0.0.1:8080/
  Status page:           http://127.0.0.1:9091/
  Status API:            http://127.0.0.1:9091/status
  Metrics:               http://127.0.0.1:9091/metrics
  Backends A, B, C:      http://127.0.0.1:5001/  http://127.0.0.1:5002/  http://127.0.0.1:5003/
  Config (live reload):  $config
  Logs:                  $out/

  Press Ctrl-C to stop everything.
MSG
wait
