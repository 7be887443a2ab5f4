#!/usr/bin/env bash
# Times `stella verify-bundle` as a whole process on one Sigstore conformance bundle, and
# sigstore-python's `sigstore verify identity --offline` on the same bundle, with hyperfine.
#
# Usage: scripts/bench-verify-bundle.sh [CASE]
#   CASE: a folder of the conformance suite's bundle-verify cases (default rekor2-dsse-happy-path).
#
# Environment:
#   STELLA_VECTORS_DIR   the shared vectors folder (default: ../shared/vectors beside the repository)
#   RUNS                 timed runs per command (default 100 for stella, 20 for sigstore-python)
#   SKIP_SIGSTORE_PYTHON set to 1 to time stella only
#
# Requires hyperfine (Debian: apt-get install hyperfine), jq, and python3 with venv for
# sigstore-python. The script installs sigstore==4.5.1 from PyPI into
# target/bench-verify-bundle/sigstore-python-venv on its first run. Both commands verify fully
# offline: the trusted root comes from the case's own trusted_root.json. Where `unshare -n`
# works, the script first runs each command once in a network namespace without interfaces,
# to show that neither needs the network.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

case_name="${1:-rekor2-dsse-happy-path}"
vectors="${STELLA_VECTORS_DIR:-$repo/../shared/vectors}"
[[ -d "$vectors" ]] || fail "vectors folder $vectors not found; set STELLA_VECTORS_DIR"
vectors="$(cd "$vectors" && pwd)"
suite="$vectors/sigstore-conformance/bundle-verify"
case_dir="$suite/$case_name"
work="$repo/target/bench-verify-bundle"
sigstore_python_version="4.5.1"
venv="$work/sigstore-python-venv"

# The conformance suite's default signer, which every case without identity files uses.
identity="https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
issuer="https://token.actions.githubusercontent.com"

fail() {
    echo "error: $*" >&2
    exit 1
}

for tool in hyperfine jq cargo; do
    command -v "$tool" >/dev/null ||
        fail "$tool not found; install it (Debian: apt-get install $tool, cargo: rustup)"
done

bundle="$case_dir/bundle.sigstore.json"
trusted_root="$case_dir/trusted_root.json"
artifact="$suite/a.txt"
[[ -f "$case_dir/artifact" ]] && artifact="$case_dir/artifact"
[[ -f "$case_dir/identity" ]] && identity="$(<"$case_dir/identity")"
[[ -f "$case_dir/issuer" ]] && issuer="$(<"$case_dir/issuer")"
for file in "$bundle" "$trusted_root" "$artifact"; do
    [[ -f "$file" ]] || fail "$file not found; set STELLA_VECTORS_DIR to the shared vectors folder"
done
[[ "$case_name" != *_fail ]] || fail "case $case_name is expected to fail; time a passing case"
mkdir -p "$work"

echo "== building stella (release)"
cargo build --release --quiet -p stella-client --bin stella
stella="$repo/target/release/stella"
stella_command=("$stella" verify-bundle --bundle "$bundle" --certificate-identity "$identity"
    --certificate-oidc-issuer "$issuer" --trusted-root "$trusted_root" "$artifact")

# Runs a command once with no network where `unshare -n` is allowed, and else as it is.
run_offline_check() {
    local label="$1"
    shift
    if unshare -n true 2>/dev/null; then
        unshare -n "$@" >/dev/null || fail "$label did not verify $case_name without network"
        echo "$label verified $case_name in a network namespace without interfaces"
    else
        "$@" >/dev/null || fail "$label did not verify $case_name"
        echo "$label verified $case_name (unshare -n is not allowed here, so network use was not excluded)"
    fi
}

run_offline_check "stella verify-bundle" "${stella_command[@]}"

sigstore_command=()
if [[ "${SKIP_SIGSTORE_PYTHON:-0}" != 1 ]]; then
    echo "== preparing sigstore-python $sigstore_python_version"
    if ! "$venv/bin/sigstore" --version 2>/dev/null | grep -qx "sigstore $sigstore_python_version"; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet "sigstore==$sigstore_python_version"
    fi
    # sigstore-python 4.5.1 has no --trusted-root option: it reads a client trust configuration,
    # which wraps the trusted root with a signing configuration. Verification uses only the
    # trusted root, so the signing configuration is empty.
    trust_config="$work/$case_name.trust_config.json"
    jq -n --slurpfile root "$trusted_root" '{
        mediaType: "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        trustedRoot: $root[0],
        signingConfig: {mediaType: "application/vnd.dev.sigstore.signingconfig.v0.2+json"}
    }' >"$trust_config"
    sigstore_command=("$venv/bin/sigstore" --trust-config "$trust_config" verify identity
        --offline --bundle "$bundle" --cert-identity "$identity" --cert-oidc-issuer "$issuer"
        "$artifact")
    run_offline_check "sigstore-python" "${sigstore_command[@]}"
fi

# hyperfine takes each command as one string. printf %q quotes every argument for that string,
# and --shell=none then splits it without starting a shell, so no shell start-up is timed.
quote() { printf '%q ' "$@"; }

echo "== timing stella verify-bundle"
hyperfine --shell=none --warmup 10 --runs "${RUNS:-100}" \
    --command-name "stella verify-bundle" \
    --export-json "$work/stella.json" "$(quote "${stella_command[@]}")"
stella_mean="$(jq '.results[0].mean' "$work/stella.json")"
stella_median="$(jq '.results[0].median' "$work/stella.json")"

if [[ ${#sigstore_command[@]} -gt 0 ]]; then
    echo "== timing sigstore-python $sigstore_python_version"
    hyperfine --shell=none --warmup 2 --runs "${RUNS:-20}" \
        --command-name "sigstore verify identity --offline" \
        --export-json "$work/sigstore-python.json" "$(quote "${sigstore_command[@]}")"
    python_mean="$(jq '.results[0].mean' "$work/sigstore-python.json")"
    python_median="$(jq '.results[0].median' "$work/sigstore-python.json")"
fi

echo "== summary: $case_name, whole process, wall time; the targets are checked on the mean"
jq -rn --argjson stella "$stella_mean" --argjson stella_median "$stella_median" \
    --argjson python "${python_mean:-null}" --argjson python_median "${python_median:-null}" \
    --arg version "$sigstore_python_version" '
    def ms: . * 1000 * 100 | round / 100;
    def verdict(ok): if ok then "met" else "NOT met" end;
    "stella verify-bundle: mean \($stella | ms) ms, median \($stella_median | ms) ms (target: under 10 ms: \(verdict($stella < 0.010)))",
    if $python == null then "sigstore-python: skipped" else
        "sigstore-python \($version): mean \($python | ms) ms, median \($python_median | ms) ms",
        "ratio of means: stella is \($python / $stella * 10 | round / 10) times faster (target: at least 30: \(verdict($python / $stella >= 30)))"
    end'
