#!/usr/bin/env bash
# A load balancer VM (lb1, lb2; keepalived.sh shares the floating address between them): the balancer as
# the 'balancer' systemd service, proxy on 8080 (HTTP) and 8443 (HTTPS), management on 9091. The config is installed once from deploy/config/balancer.json; later edits to
# /etc/balancer/balancer.json on the VM are kept across re-provisioning and applied live by the running balancer.
# Usage (as root, by Vagrant): lb.sh NAME [NAME...]   the names and addresses clients use for this VM, put
# in the self-signed certificate made when /etc/balancer/tls/ has none.
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: lb.sh NAME [NAME...]  (the host names and IP addresses of this VM, for its TLS certificate)" >&2
  exit 2
fi

repo=/vagrant
publish="$repo/deploy/vagrant/publish/balancer"
config=/etc/balancer/balancer.json

if [ ! -f "$publish/Balancer.dll" ]; then
  echo "lb.sh: $publish/Balancer.dll is missing; run deploy/vagrant/publish.sh on the host" >&2
  exit 1
fi

systemd-sysusers "$repo/deploy/systemd/yarp-balancer.sysusers.conf"
install -d -m 0755 /opt/balancer /etc/balancer
cp -a "$publish/." /opt/balancer/
chown -R root:root /opt/balancer
chmod -R u=rwX,go=rX /opt/balancer
if [ ! -f "$config" ]; then
  install -m 0644 "$repo/deploy/config/balancer.json" "$config"
fi
# Secrets (Balancer__Management__Token=...) go in balancer.env: root-owned, read by systemd only.
if [ ! -f /etc/balancer/balancer.env ]; then
  install -m 0600 /dev/null /etc/balancer/balancer.env
fi

# The certificate the shipped config names (Balancer:Tls:CertificatePath, KeyPath): self-signed, made only
# when there is none; a real one installed there, or named by those two keys instead, is left alone.
bash "$repo/deploy/tls/self-signed-cert.sh" --group balancer /etc/balancer/tls "$@"

# Refuse to (re)start on a config the balancer would reject, and say why.
dotnet /opt/balancer/Balancer.dll --check-config "$config"

install -m 0644 "$repo/deploy/systemd/balancer.service" /etc/systemd/system/
systemctl daemon-reload
systemctl enable balancer
systemctl restart balancer

for _ in $(seq 1 30); do
  if curl -fsS http://127.0.0.1:9091/healthz >/dev/null 2>&1; then
    echo "balancer: up; proxy http://$1:8080/ and https://$1:8443/, status page http://$1:9091/"
    exit 0
  fi
  sleep 1
done
echo "lb.sh: the balancer did not answer /healthz on port 9091 within 30 s" >&2
journalctl -u balancer -n 30 --no-pager >&2 || true
exit 1
