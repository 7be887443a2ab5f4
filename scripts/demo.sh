#!/usr/bin/env bash
# Runs the air-gap promotion runbook end to end on this machine. It installs the system packages
# the build needs and builds the workspace. It then generates a demo kit (a signed tiled log, a test
# CA and timestamp authority, DSSE-signed attestations, TLS certificates for the services) and packs
# the three offline bundles. It creates an Authority signing key and its JWKS. It starts the
# attestor and the gate on loopback with their own data directories. Both serve TLS, the attestor
# requires a client certificate, and the gate presents one to it (mutual TLS). Last, it mints an
# operator token for the tenant "demo", runs the runbook over https with that token and prints the
# decision.
#
# Environment: DEMO_DIR (default ./demo-out, wiped first if this script made it), ATTESTOR_PORT (default 7401),
# GATE_PORT (default 7402), CARGO_TARGET_DIR (cargo's build directory), STELLA_BIN_DIR (the binaries'
# directory, default $CARGO_TARGET_DIR/debug or target/debug).
set -euo pipefail
cd "$(dirname "$0")/.."

demo_dir="${DEMO_DIR:-$PWD/demo-out}"
attestor_port="${ATTESTOR_PORT:-7401}"
gate_port="${GATE_PORT:-7402}"

scripts/install-deps.sh
echo "==> Building (the first build compiles RocksDB and takes about 10 minutes on 2 cores)"
cargo build --locked --workspace --bins
# STELLA_BIN_DIR, else CARGO_TARGET_DIR/debug, else target/debug: where cargo put the binaries.
bin="${STELLA_BIN_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/debug}"

# Wipe only a folder this script made before (it carries a marker file), never other data.
if [ -e "$demo_dir" ] && [ -n "$(ls -A "$demo_dir" 2>/dev/null)" ] && [ ! -e "$demo_dir/.stella-demo" ]; then
    echo "error: $demo_dir exists and was not made by this script; remove it or set DEMO_DIR" >&2
    exit 1
fi
rm -rf "$demo_dir"
mkdir -p "$demo_dir"
touch "$demo_dir/.stella-demo"
kit="$demo_dir/kit"

echo "==> Generating the demo kit in $kit"
"$bin/stella-demo-kit" --out "$kit"
tls="$kit/tls"
authority="$demo_dir/authority"
mkdir -p "$authority"
token_file="$authority/operator.token"

# Every service command reads the operator token from its file. The auth commands need none.
stella() { "$bin/stella" --token-file "$token_file" "$@"; }
run() {
    echo
    echo "\$ stella $*"
    stella "$@"
}

echo
echo "==> Authority: a signing key, the JWKS that the services check tokens against, an operator token"
run auth keygen --out "$authority/authority-key.pem"
run auth jwks --key "$authority/authority-key.pem" --out "$authority/jwks.json"

# The operator's token for the tenant "demo" goes to a file that only this user can read, and is
# never printed.
scopes="trust:import,tiles:import,evidence:import,evidence:verify,reports:read"
scopes="$scopes,promotion:preview,promotion:evaluate,decisions:read,policy:import"
echo
echo "\$ stella auth token --key $authority/authority-key.pem --tenant demo --scopes $scopes --ttl 1h > $token_file"
(umask 077 && stella auth token --key "$authority/authority-key.pem" --tenant demo --scopes "$scopes" --ttl 1h \
    >"$token_file")

pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT

port_answers() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Fails when another process already listens on a port this script is about to use.
require_free_port() {
    local port="$1" name="$2" variable="$3"
    if port_answers "$port"; then
        echo "error: 127.0.0.1:$port is already in use, so the $name cannot listen there; stop the" \
            "process that holds it or set $variable to a free port" >&2
        exit 1
    fi
}

# Waits until the service with process id `pid` logs that it listens and its port accepts
# connections. Stops with the tail of its log when the service exits first, so the runbook never
# talks to another process that holds the port.
wait_for_service() {
    local pid="$1" port="$2" name="$3"
    local log="$demo_dir/$name.log"
    for _ in $(seq 1 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            local status=0
            wait "$pid" || status=$?
            echo "error: the $name (process $pid) exited with status $status before it was ready;" \
                "last lines of $log:" >&2
            tail -n 20 "$log" >&2
            exit 1
        fi
        if grep -q "$name listening" "$log" 2>/dev/null && port_answers "$port"; then
            return 0
        fi
        sleep 0.1
    done
    echo "error: the $name (process $pid) did not start listening on 127.0.0.1:$port within 30 s;" \
        "last lines of $log:" >&2
    tail -n 20 "$log" >&2
    exit 1
}

require_free_port "$attestor_port" attestor ATTESTOR_PORT
require_free_port "$gate_port" gate GATE_PORT

echo
echo "==> Starting the attestor on 127.0.0.1:$attestor_port and the gate on 127.0.0.1:$gate_port (TLS;" \
    "the attestor requires a client certificate)"
"$bin/stella-attestor" --listen "127.0.0.1:$attestor_port" --data-dir "$demo_dir/attestor-data" \
    --authority-jwks "$authority/jwks.json" \
    --tls-cert "$tls/server.pem" --tls-key "$tls/server-key.pem" --tls-client-ca "$tls/ca.pem" \
    >"$demo_dir/attestor.log" 2>&1 &
attestor_pid=$!
pids+=("$attestor_pid")
wait_for_service "$attestor_pid" "$attestor_port" attestor
"$bin/stella-gate" --listen "127.0.0.1:$gate_port" --data-dir "$demo_dir/gate-data" \
    --attestor "https://127.0.0.1:$attestor_port" --policy "$kit/policy.yaml" \
    --attestor-tls-ca "$tls/ca.pem" --attestor-tls-cert "$tls/client.pem" \
    --attestor-tls-key "$tls/client-key.pem" \
    --authority-jwks "$authority/jwks.json" --tls-cert "$tls/server.pem" --tls-key "$tls/server-key.pem" \
    >"$demo_dir/gate.log" 2>&1 &
gate_pid=$!
pids+=("$gate_pid")
wait_for_service "$gate_pid" "$gate_port" gate

export STELLA_ATTESTOR_URL="https://127.0.0.1:$attestor_port"
export STELLA_GATE_URL="https://127.0.0.1:$gate_port"
export STELLA_TLS_CA="$tls/ca.pem"
export STELLA_TLS_CERT="$tls/client.pem"
export STELLA_TLS_KEY="$tls/client-key.pem"

echo
echo "==> Connected zone: packing the three bundles"
run trust pack --trusted-root "$kit/trusted_root.json" --version 1 --expires 30d \
    --out "$demo_dir/trust-roots.tgz"
run rekor tiles pack --tiles-dir "$kit/log" --out "$demo_dir/rekor-tiles.tgz"
run evidence pack --sigstore-bundle "$kit/provenance.sigstore.json" \
    --out "$demo_dir/portable-evidence-bundle.tgz"

echo
echo "==> Air gap: the runbook"
run trust import --bundle "$demo_dir/trust-roots.tgz"
run evidence verify --bundle "$demo_dir/portable-evidence-bundle.tgz" --offline
bundle_id="$(stella --output json evidence verify --bundle "$demo_dir/portable-evidence-bundle.tgz" --offline \
    | sed -n 's/.*"bundle_id":"\([^"]*\)".*/\1/p')"
run rekor tiles import --bundle "$demo_dir/rekor-tiles.tgz"
run rekor verify --offline --evidence-bundle-id "$bundle_id"

subject="sha256:$(cut -d" " -f1 "$kit/artifact.txt.sha256")"
run promotion create --promotion demo-release-1 --subject "$subject" --target prod \
    --evidence-bundle-id "$bundle_id"
run promotion preview-gates --promotion demo-release-1 --offline-rekor
echo
echo "\$ stella --output json promotion evaluate --promotion demo-release-1 --offline-rekor"
set +e
evaluation="$(stella --output json promotion evaluate --promotion demo-release-1 --offline-rekor)"
status=$?
set -e
echo "$evaluation"
record_id="$(printf '%s' "$evaluation" | sed -n 's/.*"record_id":"\([^"]*\)".*/\1/p')"
if [ -n "$record_id" ]; then
    run decisions get "$record_id"
fi

echo
if [ "$status" -eq 0 ]; then
    echo "==> Decision: allow. The records are in $demo_dir/gate-data; the service logs are in $demo_dir."
else
    echo "==> The promotion was not allowed (exit status $status); the service logs are in $demo_dir." >&2
    exit "$status"
fi
