#!/usr/bin/env bash
# Runs on the host (a Vagrant trigger, before up/provision/reload): publishes the balancer and the sample
# backend to deploy/vagrant/publish/, which the VMs see through the /vagrant synced folder. Framework-
# dependent output, so it runs on x64 and arm64 VMs alike. Skipped when nothing under src/ changed.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/deploy/vagrant/publish"
stamp="$out/.published"

if [ -f "$stamp" ] && [ -z "$(find "$root/src" "$root/Directory.Build.props" "$root/Directory.Packages.props" \
      -type f -newer "$stamp" -not -path '*/bin/*' -not -path '*/obj/*' -print -quit)" ]; then
  echo "publish.sh: $out is up to date"
  exit 0
fi

if ! command -v dotnet >/dev/null 2>&1; then
  echo "publish.sh: the .NET 10 SDK is needed on the host to build what the VMs run (dotnet not found)" >&2
  exit 1
fi

dotnet publish "$root/src/Balancer" -c Release -o "$out/balancer" -p:UseAppHost=false --nologo -v quiet
dotnet publish "$root/src/SampleBackend" -c Release -o "$out/backend" -p:UseAppHost=false --nologo -v quiet
touch "$stamp"
echo "publish.sh: published to $out"
