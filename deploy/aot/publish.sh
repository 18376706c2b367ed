#!/usr/bin/env bash
# Publishes the balancer as one Native AOT executable (linux-x64; no .NET runtime needed where it runs) into
# DIR (default artifacts/aot/), skipped when nothing the balancer is built from changed since the last publish:
# the native compile takes about ten minutes on a 2-CPU machine. Needs clang and zlib1g-dev (Debian 12:
# apt-get install clang-14 zlib1g-dev). Prints the executable's path.
#
# Usage: deploy/aot/publish.sh [DIR]
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mkdir -p "${1:-$root/artifacts/aot}" && cd "${1:-$root/artifacts/aot}" && pwd)
exe="$out/Balancer"

if [ -x "$exe" ] && [ -z "$(find "$root/src/Balancer" "$root/src/Shared" "$root/Directory.Build.props" "$root/Directory.Packages.props" \
      "$root/global.json" -type f -newer "$exe" -not -path '*/bin/*' -not -path '*/obj/*' -print -quit)" ]; then
  echo "$exe"
  exit 0
fi

command -v clang >/dev/null || command -v clang-14 >/dev/null || {
  echo "publish.sh: Native AOT needs a C toolchain to link: apt-get install clang-14 zlib1g-dev" >&2; exit 1; }

echo "publish.sh: Native AOT publish to $out (about ten minutes)..." >&2
dotnet publish "$root/src/Balancer" -c Release -r linux-x64 -p:PublishAot=true -o "$out" --nologo -v quiet >&2
# The publish leaves the executable's timestamp at link time; touched so the check above compares with now.
touch "$exe"
echo "$exe"
