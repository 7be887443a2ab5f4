#!/usr/bin/env bash
# Writes the development configuration that compose.yaml mounts into the attestor and the gate,
# and the operator's material for running the runbook against them.
#
# Usage: scripts/compose-config.sh [DIR]      (default DIR: deploy)
#
# DIR receives:
#   tls/                 CA, server certificate and key (for localhost, 127.0.0.1, attestor and
#                        gate), client certificate and key. Mounted into both services: the
#                        attestor requires the client certificate, which the gate and the
#                        operator present.
#   authority/jwks.json  public key of the development Authority. Mounted into both services.
#   policy/policy.yaml   gate policy of the demo kit. Mounted into the gate.
#   dev-authority/authority-key.pem   the development Authority's signing key; never mounted.
#   operator.token       token of tenant "demo" with the runbook's scopes, valid for 12 hours.
#   kit/                 the demo kit: trusted root, tiled log, Sigstore bundles, artifact.
#
# The services run as user 65532 in their containers. When this script runs as root, it gives
# that user the two TLS private keys. Otherwise it makes them readable by every local user, which
# suits this development material only: a production site gives its real keys to user 65532.
#
# The binaries come from STELLA_BIN_DIR (default target/debug). DIR must be missing or empty, or
# contain the marker file .stella-compose-config that this script writes. The script replaces a
# directory that it wrote before.
set -euo pipefail
cd "$(dirname "$0")/.."

config_dir="${1:-deploy}"
bin_dir="${STELLA_BIN_DIR:-target/debug}"
# The user that the services run as inside the image (docker/Dockerfile).
service_uid=65532
marker=".stella-compose-config"

for binary in stella stella-demo-kit; do
    if [ ! -x "$bin_dir/$binary" ]; then
        echo "error: $bin_dir/$binary is missing; build it first:" \
            "cargo build --locked -p stella-client -p stella-demo-kit --bins" >&2
        exit 1
    fi
done
stella="$bin_dir/stella"

if [ -e "$config_dir" ] && [ -n "$(ls -A "$config_dir" 2>/dev/null)" ] && [ ! -e "$config_dir/$marker" ]; then
    echo "error: $config_dir exists and was not written by this script; remove it or choose" \
        "another directory" >&2
    exit 1
fi
rm -rf "$config_dir"
mkdir -p "$config_dir"
touch "$config_dir/$marker"

"$bin_dir/stella-demo-kit" --out "$config_dir/kit" >/dev/null

mkdir -p "$config_dir/tls" "$config_dir/authority" "$config_dir/policy" "$config_dir/dev-authority"
cp "$config_dir"/kit/tls/*.pem "$config_dir/tls/"
cp "$config_dir/kit/policy.yaml" "$config_dir/policy/policy.yaml"

"$stella" auth keygen --out "$config_dir/dev-authority/authority-key.pem" >/dev/null
"$stella" auth jwks --key "$config_dir/dev-authority/authority-key.pem" \
    --out "$config_dir/authority/jwks.json" >/dev/null

scopes="trust:import,tiles:import,evidence:import,evidence:verify,reports:read"
scopes="$scopes,promotion:preview,promotion:evaluate,decisions:read,policy:import"
(umask 077 && "$stella" auth token --key "$config_dir/dev-authority/authority-key.pem" \
    --tenant demo --scopes "$scopes" --ttl 12h >"$config_dir/operator.token")

# The services read these as user 65532, whatever the umask of this shell.
chmod 0755 "$config_dir/tls" "$config_dir/authority" "$config_dir/policy"
chmod 0644 "$config_dir/tls/ca.pem" "$config_dir/tls/server.pem" "$config_dir/tls/client.pem" \
    "$config_dir/authority/jwks.json" "$config_dir/policy/policy.yaml"
if [ "$(id -u)" -eq 0 ]; then
    chown "$service_uid:$service_uid" "$config_dir/tls/server-key.pem" "$config_dir/tls/client-key.pem"
else
    # NOTE: a user other than root cannot give a file to user 65532, so the development keys
    # become readable by every local user.
    chmod 0644 "$config_dir/tls/server-key.pem" "$config_dir/tls/client-key.pem"
fi

echo "wrote the Compose configuration to $config_dir: tls/, authority/jwks.json, policy/policy.yaml," \
    "operator.token (tenant demo) and the demo kit in kit/"
