#!/bin/sh
# keepalived's notify script: one line per VRRP state change, to syslog and to LOG_FILE.
# keepalived calls it as: notify.sh LOG_FILE TYPE NAME STATE PRIORITY
#   e.g. notify.sh /var/log/keepalived-balancer.log INSTANCE balancer MASTER 100
log_file=$1
shift
line="$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) $(hostname) vrrp $1 $2 -> $3 (priority ${4:-?})"
logger -t keepalived-balancer "$line" 2>/dev/null || true
echo "$line" >> "$log_file"
