#!/usr/bin/env bash
# Runs the air-gap promotion runbook end to end on this machine. It installs the system packages
# the build needs and builds the workspace. It then generates a demo kit (a signed tiled log, a test
# CA and timestamp authority, DSSE-signed attestations) and packs the three offline bundles. Last, it
# starts the attestor and the gate on loopback with their own data directories, runs the runbook and
# prints the decision.
#
# Environment: DEMO_DIR (default ./demo-out, wiped first if this script made it), ATTESTOR_PORT (default 7401),
# GATE_PORT (default 7402).
set -euo pipefail
cd "$(dirname "$0")/.."

demo_dir="${DEMO_DIR:-$PWD/demo-out}"
attestor_port="${ATTESTOR_PORT:-7401}"
gate_port="${GATE_PORT:-7402}"

scripts/install-deps.sh
echo "==> Building (the first build compiles RocksDB and takes about 10 minutes)"
cargo build --locked --workspace --bins
bin="$PWD/target/debug"

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

pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT

wait_for_port() {
    local port="$1" name="$2"
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "error: $name did not start listening on 127.0.0.1:$port; see $demo_dir/$name.log" >&2
    exit 1
}

echo "==> Starting the attestor on 127.0.0.1:$attestor_port and the gate on 127.0.0.1:$gate_port"
"$bin/stella-attestor" --listen "127.0.0.1:$attestor_port" --data-dir "$demo_dir/attestor-data" \
    >"$demo_dir/attestor.log" 2>&1 &
pids+=($!)
wait_for_port "$attestor_port" attestor
"$bin/stella-gate" --listen "127.0.0.1:$gate_port" --data-dir "$demo_dir/gate-data" \
    --attestor "http://127.0.0.1:$attestor_port" --policy "$kit/policy.yaml" \
    >"$demo_dir/gate.log" 2>&1 &
pids+=($!)
wait_for_port "$gate_port" gate

export STELLA_ATTESTOR_URL="http://127.0.0.1:$attestor_port"
export STELLA_GATE_URL="http://127.0.0.1:$gate_port"
stella() { "$bin/stella" "$@"; }
run() {
    echo
    echo "\$ stella $*"
    stella "$@"
}

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
