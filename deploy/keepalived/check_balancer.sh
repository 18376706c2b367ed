#!/bin/sh
# keepalived's track script: succeeds while the local balancer's /readyz answers 200.
# Usage: check_balancer.sh [READYZ_URL]   (default http://127.0.0.1:9091/readyz, the management listener)
exec curl --silent --fail --output /dev/null --max-time 2 "${1:-http://127.0.0.1:9091/readyz}"
