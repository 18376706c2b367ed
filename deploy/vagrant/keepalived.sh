#!/usr/bin/env bash
# A balancer VM's half of the pair: keepalived holding the floating address while this VM's balancer is
# ready, configured by deploy/keepalived/render.sh (track script on /readyz, nopreempt, notify log).
# Usage (as root, by Vagrant): keepalived.sh NAME OWN_IP VIP/PREFIX PRIORITY PEER_IP [PEER_IP...]
#   keepalived.sh --render NAME OWN_IP ...   only prints the keepalived.conf it would install
# The interface is the one carrying OWN_IP: its name depends on the box (eth1, enp0s8, ...). Adverts go by
# unicast from OWN_IP to the peers. LB_SCRIPTS and LB_SCRIPT_USER in the environment reach render.sh;
# REPO is the checkout (default /vagrant: Vagrant runs a copy of this script from /tmp).
set -euo pipefail

repo=${REPO:-/vagrant}
render_only=false
if [ "${1:-}" = "--render" ]; then
  render_only=true
  shift
fi
if [ $# -lt 5 ]; then
  echo "usage: keepalived.sh [--render] NAME OWN_IP VIP/PREFIX PRIORITY PEER_IP [PEER_IP...]" >&2
  exit 2
fi
name=$1 own=$2 vip=$3 priority=$4
shift 4

interface=$(ip -o -4 addr show | awk -v own="$own" '{ split($4, a, "/"); if (a[1] == own) { print $2; exit } }')
if [ -z "$interface" ]; then
  echo "keepalived.sh: no interface has the address $own" >&2
  exit 1
fi

render() {
  LB_NAME=$name LB_INTERFACE=$interface LB_VIP=$vip LB_PRIORITY=$priority LB_SOURCE=$own LB_PEERS="$*" \
    "$repo/deploy/keepalived/render.sh"
}

if $render_only; then
  render "$@"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends keepalived curl >/dev/null

# The user the track and notify scripts run as (enable_script_security refuses root-writable-by-others ones).
if ! id keepalived_script >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin keepalived_script
fi
install -d -m 0755 /etc/keepalived
install -m 0755 "$repo/deploy/keepalived/check_balancer.sh" "$repo/deploy/keepalived/notify.sh" /etc/keepalived/
touch /var/log/keepalived-balancer.log
chown keepalived_script /var/log/keepalived-balancer.log

# Checked by keepalived before it replaces the running config.
conf=/etc/keepalived/keepalived.conf
render "$@" >"$conf.new"
keepalived --config-test --use-file "$conf.new"
mv "$conf.new" "$conf"

# The balancer behind the floating address: answers of requests in flight at a move still get out.
install -D -m 0644 "$repo/deploy/systemd/balancer-floating-address.conf" /etc/systemd/system/balancer.service.d/floating-address.conf
systemctl daemon-reload
systemctl restart balancer

systemctl enable keepalived
systemctl restart keepalived
echo "keepalived: $name ($own on $interface, priority $priority) shares $vip with $*; holder: ip -brief addr show $interface"
