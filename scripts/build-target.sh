#!/usr/bin/env bash
# Builds the static release binary for one router or board family and leaves it, stripped,
# in target/cross/NAME/streampump. Called by `make NAME`; see docs/cross-builds.md.
# x86_64, aarch64 and armv7 are built with HTTPS (the default `tls` feature). mips and mipsel
# get two binaries: streampump without TLS (--no-default-features; routers with 8 MB of flash
# and the MIPS size budget) and streampump-tls with it.
#
#   scripts/build-target.sh x86_64|aarch64|armv7|mipsel|mips
#   scripts/build-target.sh --check NAME...   only checks that the tools for NAME... are there,
#                                             and names the one command that brings them
#
# BUILDER=cross   cross-rs in a container (needs docker or podman, and `cargo install cross`)
# BUILDER=native  no containers: cargo-zigbuild with zig 0.14.1 (`make tools`), with rustup's
#                 std for x86_64 and aarch64 and nightly -Zbuild-std for armv7 and MIPS
# BUILDER=auto    (default) cross when a container engine answers, otherwise native
#
# MIPS has no prebuilt std since Rust 1.72, so std is built from source with the nightly
# toolchain pinned in NIGHTLY; armv7 musl goes the same way because its prebuilt std is not
# always obtainable. std is then built for size too, which is what keeps mipsel under budget.
set -euo pipefail
cd "$(dirname "$0")/.."

builder=${BUILDER:-auto}
nightly=${NIGHTLY:?NIGHTLY must name the pinned nightly toolchain (the Makefile sets it)}
tools_dir=${TOOLS_DIR:-$PWD/.tools}

die() {
    echo "error: $*" >&2
    exit 1
}

# Sets `triple` and `std` (prebuilt or source) for a short name.
target_of() {
    case "$1" in
    x86_64) triple=x86_64-unknown-linux-musl std=prebuilt ;;
    aarch64) triple=aarch64-unknown-linux-musl std=prebuilt ;;
    armv7) triple=armv7-unknown-linux-musleabihf std=source ;;
    mipsel) triple=mipsel-unknown-linux-musl std=source ;;
    mips) triple=mips-unknown-linux-musl std=source ;;
    *) die "unknown target '$1'; choose one of: x86_64 aarch64 armv7 mipsel mips" ;;
    esac
}

if [ "$builder" = auto ]; then
    builder=native
    if command -v cross >/dev/null 2>&1; then
        for engine in docker podman; do
            if command -v "$engine" >/dev/null 2>&1 && "$engine" info >/dev/null 2>&1; then
                builder=cross
                break
            fi
        done
    fi
fi

# What the native build of the current `triple` lacks, one line each with the command that
# installs just that; empty when everything is there.
missing_native_tools() {
    command -v rustup >/dev/null 2>&1 || {
        echo "rustup (see https://rustup.rs)"
        return
    }
    if [ "$std" = prebuilt ]; then
        rustup target list --installed 2>/dev/null | grep -qx "$triple" ||
            echo "Rust's std for $triple: rustup target add $triple"
    else
        if ! rustup run "$nightly" rustc --version >/dev/null 2>&1; then
            echo "the Rust toolchain $nightly: rustup toolchain install $nightly --profile minimal --component rust-src,llvm-tools"
        else
            local sysroot
            sysroot=$(rustup run "$nightly" rustc --print sysroot)
            [ -d "$sysroot/lib/rustlib/src/rust/library" ] ||
                echo "rust-src for $nightly: rustup component add rust-src --toolchain $nightly"
        fi
    fi
    # Every target links with zig, which also compiles ring's C (HTTPS).
    PATH=$tools_dir/venv/bin:$PATH command -v cargo-zigbuild >/dev/null 2>&1 ||
        echo "cargo-zigbuild in $tools_dir (from PyPI)"
    PATH=$tools_dir/venv/bin:$PATH python3 -m ziglang version 2>/dev/null | grep -qx '0\.14\.1' ||
        echo "zig 0.14.1 in $tools_dir (0.15 builds MIPS binaries that crash, 0.17 fails to link)"
    [ -n "$(strip_tool)" ] ||
        echo "llvm-strip: rustup component add llvm-tools --toolchain $nightly"
}

# Rust's `strip = true` leaves MIPS's .pdr section (about 95 KB of procedure descriptors no
# tool on a router reads); llvm-strip removes it and anything else not needed to run.
strip_tool() {
    local host candidate
    host=$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')
    for candidate in "$(rustup run "$nightly" rustc --print sysroot 2>/dev/null)" "$(rustc --print sysroot 2>/dev/null)"; do
        if [ -n "$candidate" ] && [ -x "$candidate/lib/rustlib/$host/bin/llvm-strip" ]; then
            echo "$candidate/lib/rustlib/$host/bin/llvm-strip"
            return
        fi
    done
    command -v llvm-strip || true
}

# `--check NAME...`: everything the builds need, checked before any of them starts, so that a
# fresh clone learns at once what to run rather than after the first target built.
if [ "${1:-}" = --check ]; then
    shift
    [ "$builder" = cross ] && exit 0
    problems=""
    for name in "$@"; do
        target_of "$name"
        problems+=$(missing_native_tools)$'\n'
    done
    problems=$(printf '%s' "$problems" | sed '/^$/d' | sort -u)
    if [ -n "$problems" ]; then
        echo "error: the cross builds need tools this machine does not have yet:" >&2
        printf '%s\n' "$problems" | sed 's/^/  - /' >&2
        echo "Run this once, then try again:  make tools" >&2
        exit 1
    fi
    exit 0
fi

name=${1:-}
target_of "$name"
triple_var=$(echo "$triple" | tr 'a-z-' 'A-Z_')
out_dir=target/cross/$name

# Flags for std built from source, shared by both builders:
# - optimize_for_size: std's own smaller code paths (about 100 KB less on mipsel);
# - relocation-model=static: position-independent MIPS code calls everything through the GOT,
#   which costs about 15% of the binary for an address-space randomisation routers rarely have;
# - location-detail=none: panic messages keep their text but lose file:line strings;
# - fmt-debug=none: every `{:?}` compiles to nothing, which keeps Debug formatting out of
#   the binary (11 KB less than without the flag). The relay formats nothing with `{:?}`
#   outside its tests: durations and quoted text have Display types of their own
#   (`decimal::Seconds`, `quoted::Quoted`).
build_std_args=("-Zbuild-std=std,panic_unwind" -Zbuild-std-features=optimize_for_size)
source_rustflags="-C relocation-model=static -Z location-detail=none -Z fmt-debug=none"


# Builds target/$triple/release/streampump with the given extra cargo arguments.
cargo_build() {
    case "$builder" in
    cross)
        command -v cross >/dev/null 2>&1 ||
            die "BUILDER=cross needs cross-rs: cargo install cross --version 0.2.5 --locked"
        export CROSS_CONFIG=$PWD/cross.toml
        if [ "$std" = source ]; then
            # cross 0.2.5 only knows `build-std = true`; the crate list and features go here.
            # link-self-contained=no: the image's own musl start files, not rustc's (cross #1416).
            export "CARGO_TARGET_${triple_var}_RUSTFLAGS=$source_rustflags -C link-self-contained=no"
            cross "+$nightly" build --release --locked --target "$triple" "${build_std_args[@]}" "$@"
        else
            cross build --release --locked --target "$triple" "$@"
        fi
        ;;
    native)
        problems=$(missing_native_tools)
        [ -z "$problems" ] || die "$(printf 'missing for %s:\n%s\nRun: make tools' "$name" "$problems")"
        # ring (under rustls, for HTTPS) compiles C for the target: zig is its C compiler and
        # the linker for every target.
        PATH=$tools_dir/venv/bin:$PATH
        if [ "$std" = prebuilt ]; then
            cargo zigbuild --release --locked --target "$triple" "$@"
        else
            flags=$source_rustflags
            # zig brings its own musl start files; rustc's copies are not there for armv7.
            [ "$name" = armv7 ] && flags="$flags -C link-self-contained=no"
            # zig is handed rustc's (empty) library directory for this target and says so; harmless.
            flags="$flags -A linker-messages"
            export "CARGO_TARGET_${triple_var}_RUSTFLAGS=$flags"
            cargo "+$nightly" zigbuild --release --locked --target "$triple" "${build_std_args[@]}" "$@"
        fi
        ;;
    *) die "BUILDER must be auto, cross or native, not '$builder'" ;;
    esac
}

strip=$(strip_tool)
[ -n "$strip" ] ||
    die "llvm-strip is missing: rustup component add llvm-tools --toolchain $nightly (or: make tools)"

mkdir -p "$out_dir"
# Builds one variant and leaves it, stripped, as $out_dir/$1.
variant() {
    local binary=$1
    shift
    cargo_build "$@"
    "$strip" --strip-all -o "$out_dir/$binary" "target/$triple/release/streampump"
    echo "$out_dir/$binary: $(wc -c <"$out_dir/$binary") bytes ($triple, $builder build${*:+, $*})"
}

case "$name" in
mips | mipsel)
    variant streampump --no-default-features
    variant streampump-tls
    ;;
*) variant streampump ;;
esac
