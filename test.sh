#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine, then runs the whole suite.
# Usage: ./test.sh [extra dotnet test arguments, e.g. --filter RoundRobin]
#        ./test.sh --fast    the unit tests only (category Unit): no Debian packages installed or needed,
#                            no sockets, processes or browser
set -euo pipefail
cd "$(dirname "$0")"

fast=false
if [ "${1:-}" = --fast ]; then
  fast=true
  shift
fi

packages=(prometheus chromium slowhttptest shellcheck docker-compose ruby systemd wrk nginx haproxy curl openssl nghttp2-client testssl.sh keepalived iproute2 nodejs dnsmasq-base)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] && ! $fast; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "Installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Kubernetes schema check's npm packages (kubernetes-models), when the lock file changed or they are missing.
schema=tests/kubernetes-schema
# Debian's nodejs comes without npm (NodeSource's includes it): add Debian's npm only where it is missing.
if ! $fast && ! command -v npm >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
if ! $fast && { [ ! -d "$schema/node_modules/kubernetes-models" ] || [ "$schema/package-lock.json" -nt "$schema/node_modules/.package-lock.json" ]; }; then
  npm ci --prefix "$schema" --no-audit --no-fund --loglevel=error
fi

dotnet restore --nologo
dotnet build --nologo --no-restore -c Release
results=$(mktemp -d)
status=0
filter=()
if $fast; then filter=(--filter "Category=Unit"); fi
dotnet test --nologo --no-build -c Release --logger "trx;LogFileName=results.trx" --results-directory "$results" "${filter[@]}" "$@" || status=$?

# One summary line in the 'N passed, N failed' form that CI reads.
python3 - "$results/results.trx" <<'PY' || true
import sys, xml.etree.ElementTree as ET
c = ET.parse(sys.argv[1]).getroot().find('{http://microsoft.com/schemas/VisualStudio/TeamTest/2010}ResultSummary/{http://microsoft.com/schemas/VisualStudio/TeamTest/2010}Counters')
print(f"tests: {c.get('passed')} passed, {c.get('failed')} failed, {int(c.get('total')) - int(c.get('executed'))} skipped")
PY
exit $status
