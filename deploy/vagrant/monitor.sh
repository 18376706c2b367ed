#!/usr/bin/env bash
# The monitoring VM: Prometheus (Ubuntu package) with the repository's prometheus.yml, and Grafana
# (Grafana's apt repository) provisioned from grafana/provisioning and grafana/dashboards: the same files
# the compose stack mounts. Names in them (lb1, lb2, backend-a..c, prometheus) resolve through the
# topology block common.sh wrote to /etc/hosts.
set -euo pipefail

repo=/vagrant
export DEBIAN_FRONTEND=noninteractive

for f in "$repo/prometheus.yml" "$repo/grafana/provisioning" "$repo/grafana/dashboards"; do
  if [ ! -e "$f" ]; then
    echo "monitor.sh: $f is missing from the repository" >&2
    exit 1
  fi
done

# Prometheus
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus ca-certificates curl gpg >/dev/null
install -m 0644 "$repo/prometheus.yml" /etc/prometheus/prometheus.yml
promtool check config /etc/prometheus/prometheus.yml
systemctl enable prometheus
systemctl restart prometheus

# Grafana
install -d -m 0755 /etc/apt/keyrings
curl -fsSL https://apt.grafana.com/gpg.key | gpg --dearmor --yes -o /etc/apt/keyrings/grafana.gpg
echo "deb [signed-by=/etc/apt/keyrings/grafana.gpg] https://apt.grafana.com stable main" >/etc/apt/sources.list.d/grafana.list
apt-get update -qq
apt-get install -y -qq grafana >/dev/null

install -d -m 0755 /etc/grafana/provisioning/datasources /etc/grafana/provisioning/dashboards
cp "$repo"/grafana/provisioning/datasources/*.yml /etc/grafana/provisioning/datasources/
cp "$repo"/grafana/provisioning/dashboards/*.yml /etc/grafana/provisioning/dashboards/
chgrp -R grafana /etc/grafana/provisioning
chmod -R g+rX /etc/grafana/provisioning

# The dashboards go where the provider file says Grafana should look for them.
dashboards=$(sed -n 's/^[[:space:]]*path:[[:space:]]*["'\'']\{0,1\}\([^"'\'']*\)["'\'']\{0,1\}[[:space:]]*$/\1/p' /etc/grafana/provisioning/dashboards/*.yml | head -n 1)
dashboards="${dashboards:-/var/lib/grafana/dashboards}"
install -d -m 0755 "$dashboards"
cp "$repo"/grafana/dashboards/*.json "$dashboards/"
home=$(find "$dashboards" -maxdepth 1 -name '*.json' | sort | head -n 1)

install -d -m 0755 /etc/systemd/system/grafana-server.service.d
cat >/etc/systemd/system/grafana-server.service.d/yarp-balancer.conf <<CONF
[Service]
# Anyone on the host-only network sees the dashboards read-only; editing needs the admin login
# (admin/admin, changed at the first login).
Environment=GF_AUTH_ANONYMOUS_ENABLED=true
Environment=GF_AUTH_ANONYMOUS_ORG_ROLE=Viewer
Environment=GF_USERS_ALLOW_SIGN_UP=false
Environment=GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH=$home
CONF
systemctl daemon-reload
systemctl enable grafana-server
systemctl restart grafana-server

for _ in $(seq 1 60); do
  if curl -fsS http://127.0.0.1:3000/api/health >/dev/null 2>&1 && curl -fsS http://127.0.0.1:9090/-/ready >/dev/null 2>&1; then
    echo "monitor: Grafana http://192.168.56.120:3000/ (home: $home), Prometheus http://192.168.56.120:9090/"
    exit 0
  fi
  sleep 1
done
echo "monitor.sh: Grafana or Prometheus did not come up within 60 s" >&2
exit 1
