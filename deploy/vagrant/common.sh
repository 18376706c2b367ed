#!/usr/bin/env bash
# Every VM: name resolution for the whole topology (lb/balancer, backend-a..c, monitor/prometheus/grafana),
# so the same balancer config and prometheus.yml work here and in the compose stack.
# Usage (as root, by Vagrant): common.sh "IP NAME [ALIAS...],IP NAME [ALIAS...],..."
set -euo pipefail

hosts=$(tr ',' '\n' <<<"${1:?usage: common.sh \"IP NAME [ALIAS...],...\"}")
hosts_file="${HOSTS_FILE:-/etc/hosts}"
begin="# BEGIN yarp-balancer topology"
end="# END yarp-balancer topology"

# Replace our block, keep everything else: re-provisioning must not pile up duplicates.
tmp=$(mktemp)
sed "/^${begin}\$/,/^${end}\$/d" "$hosts_file" >"$tmp"
{
  echo "$begin"
  echo "$hosts"
  echo "$end"
} >>"$tmp"
# Rewritten in place, not moved: /etc/hosts may be a bind mount or a symlink.
cat "$tmp" >"$hosts_file"
rm -f "$tmp"

# Vagrant also maps each VM's own hostname to 127.0.1.1, above this block; that only affects the VM
# looking itself up, and every service here listens on all interfaces, so it is left alone.
echo "hosts: $(grep -c . <<<"$hosts") topology entries in $hosts_file"
