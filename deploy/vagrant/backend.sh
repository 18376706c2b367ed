#!/usr/bin/env bash
# A backend VM: the sample backend NAME listening on PORT on every interface, and gRPC on PORT+1000, as
# sample-backend@NAME.
# Usage (as root, by Vagrant): backend.sh NAME PORT
set -euo pipefail

name="${1:?usage: backend.sh NAME PORT}"
port="${2:?usage: backend.sh NAME PORT}"
repo=/vagrant
publish="$repo/deploy/vagrant/publish/backend"

if [ ! -f "$publish/SampleBackend.dll" ]; then
  echo "backend.sh: $publish/SampleBackend.dll is missing; run deploy/vagrant/publish.sh on the host" >&2
  exit 1
fi

systemd-sysusers "$repo/deploy/systemd/yarp-balancer.sysusers.conf"
install -d -m 0755 /opt/sample-backend /etc/sample-backend
cp -a "$publish/." /opt/sample-backend/
chown -R root:root /opt/sample-backend
chmod -R u=rwX,go=rX /opt/sample-backend
printf 'ASPNETCORE_URLS=http://0.0.0.0:%s\nBACKEND_GRPC_URLS=http://0.0.0.0:%s\n' "$port" "$((port + 1000))" >"/etc/sample-backend/$name.env"
chmod 0644 "/etc/sample-backend/$name.env"

install -m 0644 "$repo/deploy/systemd/sample-backend@.service" /etc/systemd/system/
systemctl daemon-reload
systemctl enable "sample-backend@$name"
# restart, not start: a re-provision brings new binaries.
systemctl restart "sample-backend@$name"

for _ in $(seq 1 30); do
  if curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1; then
    echo "backend $name: healthy on port $port"
    exit 0
  fi
  sleep 1
done
echo "backend.sh: sample-backend@$name did not answer /health on port $port within 30 s" >&2
journalctl -u "sample-backend@$name" -n 30 --no-pager >&2 || true
exit 1
