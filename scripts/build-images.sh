#!/usr/bin/env bash
# Builds the runtime image of the attestor and the gate (docker/Dockerfile) from the binaries in
# this repository's target directory, without contacting any registry.
#
# The image contains stella-attestor, stella-gate and stella (the container health checks run
# `stella health`). With the default base, scratch, the script also copies the shared libraries
# that `ldd` lists for the binaries from this machine, so the image runs without any base image.
# Debug information is stripped from the copies.
#
# The image is tagged stella:<hash> and stella:latest. The hash covers every file of the build
# context and the base image name, so new binaries always get a new tag. When an image with that
# tag exists, the build is skipped. The last line of stdout is the image reference
# (stella:<hash>); the progress of `docker build` goes to stderr.
#
# Usage: scripts/build-images.sh [--bin-dir DIR]
#
# Environment:
#   BASE_IMAGE      base image (default scratch). Another base, such as debian:bookworm-slim,
#                   must be present in the Docker engine or pullable, and must provide glibc at
#                   least as new as this machine's, libstdc++ and libgcc.
#   STELLA_BIN_DIR  directory of the binaries (default target/debug); --bin-dir overrides it.
set -euo pipefail
cd "$(dirname "$0")/.."

base_image="${BASE_IMAGE:-scratch}"
bin_dir="${STELLA_BIN_DIR:-target/debug}"
while [ "$#" -gt 0 ]; do
    case "$1" in
        --bin-dir)
            if [ "$#" -lt 2 ]; then
                echo "error: --bin-dir needs a directory" >&2
                exit 2
            fi
            bin_dir="$2"
            shift 2
            ;;
        -h | --help)
            sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "error: unknown argument $1; usage: scripts/build-images.sh [--bin-dir DIR]" >&2
            exit 2
            ;;
    esac
done

binaries=(stella-attestor stella-gate stella)
# The user and group of the services inside the image, and the owner of their data directories.
service_uid=65532

if ! command -v docker >/dev/null 2>&1; then
    echo "error: the docker command is not installed; install Docker Engine to build the image" >&2
    exit 1
fi
if ! docker info >/dev/null 2>&1; then
    echo "error: the Docker engine does not respond (docker info failed); start it or check" \
        "that this user may use it" >&2
    exit 1
fi
for binary in "${binaries[@]}"; do
    if [ ! -x "$bin_dir/$binary" ]; then
        echo "error: $bin_dir/$binary is missing; build the binaries first:" \
            "cargo build --locked -p stella-attestor -p stella-gate -p stella-client --bins" \
            "(or pass --bin-dir with the directory that contains them)" >&2
        exit 1
    fi
done

mkdir -p target
context="$(mktemp -d "$PWD/target/stella-image.XXXXXX")"
trap 'rm -rf "$context"' EXIT
rootfs="$context/rootfs"
mkdir -p "$rootfs/usr/local/bin" "$context/data/attestor" "$context/data/gate"
cp docker/Dockerfile "$context/Dockerfile"

for binary in "${binaries[@]}"; do
    if command -v strip >/dev/null 2>&1; then
        strip --strip-debug -o "$rootfs/usr/local/bin/$binary" "$bin_dir/$binary"
    else
        cp "$bin_dir/$binary" "$rootfs/usr/local/bin/$binary"
    fi
done

# Copies each shared library that `ldd` lists for `binary` to the same path under the image root,
# following symbolic links, so the dynamic loader finds it where it looks on this machine.
copy_libraries() {
    local binary="$1" listing
    if ! listing="$(ldd "$binary" 2>&1)"; then
        if printf '%s' "$listing" | grep -q "not a dynamic executable"; then
            return 0
        fi
        echo "error: ldd $binary failed: $listing" >&2
        exit 1
    fi
    if printf '%s\n' "$listing" | grep -q "not found"; then
        echo "error: $binary needs shared libraries that this machine lacks:" >&2
        printf '%s\n' "$listing" | grep "not found" >&2
        exit 1
    fi
    local library
    # Lines look like "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or, for the
    # loader, "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no file.
    for library in $(printf '%s\n' "$listing" | sed -n -e 's/.*=> \(\/[^ ]*\) .*/\1/p' -e 's/^[[:space:]]*\(\/[^ ]*\) .*/\1/p'); do
        mkdir -p "$rootfs$(dirname "$library")"
        cp -L "$library" "$rootfs$library"
    done
}

if [ "$base_image" = scratch ]; then
    for binary in "${binaries[@]}"; do
        copy_libraries "$bin_dir/$binary"
    done
    # A scratch image has no /etc or /tmp. Docker adds /etc/hosts and /etc/resolv.conf at run time.
    mkdir -p "$rootfs/etc" "$rootfs/tmp"
    chmod 1777 "$rootfs/tmp"
    printf 'root:x:0:0:root:/:/sbin/nologin\nstella:x:%s:%s:stella:/var/lib/stella:/sbin/nologin\n' \
        "$service_uid" "$service_uid" >"$rootfs/etc/passwd"
    printf 'root:x:0:\nstella:x:%s:\n' "$service_uid" >"$rootfs/etc/group"
    printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
fi

# The tag hashes every path, type, mode and content of the context, and the base image name.
hash="$(
    cd "$context"
    {
        printf 'base %s\n' "$base_image"
        find . -printf '%P %y %m\n' | LC_ALL=C sort
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    } | sha256sum | cut -c1-20
)"
image="stella:$hash"

if docker image inspect "$image" >/dev/null 2>&1; then
    echo "==> $image is already built from the same files" >&2
else
    echo "==> Building $image from $bin_dir (base $base_image)" >&2
    docker build --build-arg "BASE_IMAGE=$base_image" --tag "$image" "$context" >&2
fi
docker tag "$image" stella:latest
echo "$image"
