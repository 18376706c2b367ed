#!/usr/bin/env bash
# Every VM: name resolution for the whole topology (lb/balancer, backend-a..c, monitor/prometheus/grafana),
# so the same balancer config and prometheus.yml work here and in the compose stack.
# Usage (as root, by Vagrant): common.sh "IP NAME [ALIAS...]<newline>..."
set -euo pipefail

hosts="${1:?usage: common.sh HOSTS_LINES}"
begin="# BEGIN yarp-balancer topology"
end="# END yarp-balancer topology"

# Replace our block, keep everything else: re-provisioning must not pile up duplicates.
tmp=$(mktemp)
sed "/^${begin}\$/,/^${end}\$/d" /etc/hosts >"$tmp"
{
  echo "$begin"
  echo "$hosts"
  echo "$end"
} >>"$tmp"
cat "$tmp" >/etc/hosts
rm -f "$tmp"

# Vagrant also maps each VM's own hostname to 127.0.1.1, above this block; that only affects the VM
# looking itself up, and every service here listens on all interfaces, so it is left alone.
echo "hosts: $(grep -c . <<<"$hosts") topology entries in /etc/hosts"
