#!/bin/sh
# keepalived's track scripts, on the local balancer's management listener.
# Usage: check_balancer.sh [READYZ_URL]           succeeds while /readyz answers 200 (the balancer can serve)
#        check_balancer.sh --alive [READYZ_URL]   fails only when nothing listens there (curl exit 7, could not
#                                                 connect): the process is gone. A busy or unready balancer
#                                                 still accepts the connection, so one failure is proof enough.
# READYZ_URL defaults to http://127.0.0.1:9091/readyz, the management listener.
if [ "${1:-}" = --alive ]; then
  curl --silent --output /dev/null --max-time 2 "${2:-http://127.0.0.1:9091/readyz}"
  status=$?
  [ "$status" -ne 7 ]
  exit
fi
exec curl --silent --fail --output /dev/null --max-time 2 "${1:-http://127.0.0.1:9091/readyz}"
