#!/usr/bin/env bash
# Installs what the docker-free cross builds and their smoke tests need (`make tools`):
# - rustup's std for x86_64 and aarch64 musl (linked with the rust-lld that rustup ships);
# - the pinned nightly toolchain with rust-src (to build std for MIPS and armv7) and
#   llvm-tools (llvm-strip);
# - cargo-zigbuild and zig 0.14.1 from PyPI, in a virtualenv under .tools/ (zig supplies the
#   musl C library and linker for MIPS and armv7);
# - Debian's qemu-user, to run the foreign binaries in `make smoke-TARGET`.
# Everything it cannot install is named with the command that would.
set -euo pipefail
cd "$(dirname "$0")/.."

nightly=${NIGHTLY:?NIGHTLY must name the pinned nightly toolchain (the Makefile sets it)}
tools_dir=${TOOLS_DIR:-$PWD/.tools}
zigbuild_version=0.24.0
zig_version=0.14.1

command -v rustup >/dev/null 2>&1 || {
    echo "error: rustup is missing: see https://rustup.rs" >&2
    exit 1
}
rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl
rustup toolchain install "$nightly" --profile minimal --component rust-src,llvm-tools

as_root_or_explain() {
    # $1: Debian package, $2: why
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
    else
        echo "error: $2 needs Debian's $1 package: sudo apt-get install $1" >&2
        exit 1
    fi
}

if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    as_root_or_explain python3-venv "the zig toolchain's virtualenv"
fi
if [ ! -x "$tools_dir/venv/bin/pip" ]; then
    python3 -m venv "$tools_dir/venv"
fi
"$tools_dir/venv/bin/pip" install --quiet --disable-pip-version-check \
    "cargo-zigbuild==$zigbuild_version" "ziglang==$zig_version"

missing=""
for arch in aarch64 arm mips mipsel; do
    command -v "qemu-$arch" >/dev/null 2>&1 || missing=yes
done
if [ -n "$missing" ]; then
    as_root_or_explain qemu-user "make smoke-TARGET"
fi
echo "tools ready: $nightly, cargo-zigbuild $zigbuild_version, zig $zig_version, qemu-user"
