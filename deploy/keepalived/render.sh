#!/usr/bin/env bash
# Writes this host's keepalived.conf from keepalived.conf.in to stdout.
#   LB_NAME         this balancer's name (router_id), e.g. lb1
#   LB_INTERFACE    the interface that carries the floating address, e.g. eth1
#   LB_VIP          the floating address with its prefix, e.g. 192.168.56.103/24
#   LB_PRIORITY     1-254; give the preferred holder the higher one, both high (e.g. 250 and 240): a backup
#                   waits (256 - priority)/256 s before it takes an address its peer gave up
#   LB_VRID         virtual router id, 1-255, the same on both peers and unique on the network (default 51)
#   LB_PEERS        optional: the peers' own addresses, space separated. Set it where multicast does not
#                   pass (clouds, some switches): adverts are then sent by unicast from LB_SOURCE.
#   LB_SOURCE       this host's own address on LB_INTERFACE (needed with LB_PEERS)
#   LB_READYZ_URL   default http://127.0.0.1:9091/readyz
#   LB_TRACK_FILE   the balancer's Balancer:Shutdown:TrackFile (default /run/balancer/leaving)
#   LB_SCRIPTS      where check_balancer.sh and notify.sh are installed (default /etc/keepalived)
#   LB_SCRIPT_USER  the user the scripts run as (default keepalived_script)
#   LB_NOTIFY_LOG   default /var/log/keepalived-balancer.log
# Example: LB_NAME=lb1 LB_INTERFACE=eth1 LB_VIP=192.168.56.103/24 LB_PRIORITY=250 \
#          ./render.sh > /etc/keepalived/keepalived.conf
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

for required in LB_NAME LB_INTERFACE LB_VIP LB_PRIORITY; do
  if [ -z "${!required:-}" ]; then
    echo "render.sh: $required is not set" >&2
    exit 2
  fi
done
if ! [[ $LB_PRIORITY =~ ^[0-9]+$ ]] || [ "$LB_PRIORITY" -lt 1 ] || [ "$LB_PRIORITY" -gt 254 ]; then
  echo "render.sh: LB_PRIORITY must be 1-254, not '$LB_PRIORITY'" >&2
  exit 2
fi

unicast=""
if [ -n "${LB_PEERS:-}" ]; then
  if [ -z "${LB_SOURCE:-}" ]; then
    echo "render.sh: LB_PEERS needs LB_SOURCE, this host's own address" >&2
    exit 2
  fi
  unicast="    unicast_src_ip $LB_SOURCE"$'\n'"    unicast_peer {"
  for peer in $LB_PEERS; do
    unicast+=$'\n'"        $peer"
  done
  unicast+=$'\n'"    }"
fi

template=$(<"$here/keepalived.conf.in")
declare -A values=(
  [LB_NAME]=$LB_NAME
  [LB_INTERFACE]=$LB_INTERFACE
  [LB_VIP]=$LB_VIP
  [LB_PRIORITY]=$LB_PRIORITY
  [LB_VRID]=${LB_VRID:-51}
  [LB_UNICAST]=$unicast
  [LB_READYZ_URL]=${LB_READYZ_URL:-http://127.0.0.1:9091/readyz}
  [LB_TRACK_FILE]=${LB_TRACK_FILE:-/run/balancer/leaving}
  [LB_SCRIPTS]=${LB_SCRIPTS:-/etc/keepalived}
  [LB_SCRIPT_USER]=${LB_SCRIPT_USER:-keepalived_script}
  [LB_NOTIFY_LOG]=${LB_NOTIFY_LOG:-/var/log/keepalived-balancer.log}
)
for key in "${!values[@]}"; do
  template=${template//@$key@/${values[$key]}}
done
printf '%s\n' "$template"
