#!/usr/bin/env bash
# A self-signed certificate for the balancer's https:// listener, made only when none is there yet:
# DIR/tls.crt and DIR/tls.key (EC P-256, SHA-256, the names as subjectAltName, the first also as CN).
# Run by provisioning (the compose tls-init service, the lb VM); safe to run again at every deploy:
#   - neither file exists: both are made (the key readable by GROUP when --group is given);
#   - both exist (a real certificate, or the one made last time): nothing is touched;
#   - only one exists: nothing is touched, exit 1 (a half-installed real certificate needs a person).
# Usage: self-signed-cert.sh [--group GROUP] [--days N] DIR NAME [NAME...]
#   NAME: a DNS name (balancer.example.com, localhost) or an IP address (192.168.56.103, ::1).
set -euo pipefail

usage="usage: self-signed-cert.sh [--group GROUP] [--days N] DIR NAME [NAME...]"
group=""
days=365
while [ $# -gt 0 ]; do
  case "$1" in
    --group) group="${2:?$usage}"; shift 2 ;;
    --days) days="${2:?$usage}"; shift 2 ;;
    -*) echo "self-signed-cert.sh: unknown option '$1'; $usage" >&2; exit 2 ;;
    *) break ;;
  esac
done
if [ $# -lt 2 ]; then
  echo "$usage" >&2
  exit 2
fi
case "$days" in
  '' | *[!0-9]*) echo "self-signed-cert.sh: --days must be a whole number of days, not '$days'" >&2; exit 2 ;;
esac

dir=$1
shift
cert="$dir/tls.crt"
key="$dir/tls.key"

# -L as well: a symbolic link to a real certificate that is not there yet is still the operator's choice.
have() { [ -e "$1" ] || [ -L "$1" ]; }
if have "$cert" && have "$key"; then
  echo "self-signed-cert.sh: $cert and $key exist; kept as they are"
  exit 0
fi
if have "$cert" || have "$key"; then
  present=$cert missing=$key
  have "$key" && present=$key missing=$cert
  echo "self-signed-cert.sh: $present exists but $missing does not; not touching either (install both files, or remove $present to get a self-signed pair)" >&2
  exit 1
fi

sans=()
for name in "$@"; do
  if [[ "$name" =~ ^[0-9.]+$ || "$name" == *:* ]]; then
    sans+=("IP:$name")
  else
    sans+=("DNS:$name")
  fi
done

# An existing folder keeps its owner and mode: in the compose tls-init container root may not change
# them (no CAP_FOWNER), and an operator's choice is theirs.
[ -d "$dir" ] || install -d -m 0755 "$dir"
# Made beside the final files and renamed into place, so the balancer (which watches the folder) never
# reads a half-written file, and a failed run leaves nothing behind.
work=$(mktemp -d "$dir/.self-signed.XXXXXX")
trap 'rm -rf "$work"' EXIT
cat >"$work/openssl.cnf" <<CONF
[req]
distinguished_name = subject
x509_extensions = server
prompt = no
[subject]
CN = $1
[server]
subjectAltName = $(IFS=,; echo "${sans[*]}")
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
CONF
(
  umask 077
  openssl req -x509 -config "$work/openssl.cnf" -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -sha256 -days "$days" -keyout "$work/tls.key" -out "$work/tls.crt" 2>"$work/openssl.log" ||
    { cat "$work/openssl.log" >&2; exit 1; }
)
chmod 0644 "$work/tls.crt"
if [ -n "$group" ]; then
  chgrp "$group" "$work/tls.key"
  chmod 0640 "$work/tls.key"
fi
# The key first: the balancer loads a pair only when both files are there and match.
mv "$work/tls.key" "$key"
mv "$work/tls.crt" "$cert"
echo "self-signed-cert.sh: made $cert and $key for ${sans[*]}, valid $days days (self-signed: clients must trust $cert)"
