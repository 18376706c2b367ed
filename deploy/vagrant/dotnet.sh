#!/usr/bin/env bash
# Installs the ASP.NET Core runtime (not the SDK: the apps are built on the host) at /usr/share/dotnet,
# with /usr/bin/dotnet as the systemd units expect. Pinned to the patch the tests and the Dockerfiles use.
set -euo pipefail

version="${DOTNET_RUNTIME_VERSION:-10.0.12}"
install_dir=/usr/share/dotnet

if [ -x "$install_dir/dotnet" ] && "$install_dir/dotnet" --list-runtimes | grep -q "^Microsoft.AspNetCore.App $version "; then
  echo "dotnet: ASP.NET Core runtime $version already installed"
else
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends ca-certificates curl libssl3t64 zlib1g >/dev/null
  script=$(mktemp)
  curl -fsSL https://dot.net/v1/dotnet-install.sh -o "$script"
  bash "$script" --runtime aspnetcore --version "$version" --install-dir "$install_dir" --no-path
  rm -f "$script"
fi
ln -sf "$install_dir/dotnet" /usr/bin/dotnet
dotnet --list-runtimes
