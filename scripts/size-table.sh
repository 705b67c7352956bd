#!/usr/bin/env bash
# Prints the stripped size of every cross-built binary in target/cross as a Markdown table, and
# fails when a MIPS binary is over its budget (routers with 8 MB of flash are the reason).
#   scripts/size-table.sh BUDGET_BYTES TLS_BUDGET_BYTES NAME...
# mips and mipsel have two binaries: streampump (no TLS, within BUDGET_BYTES) and
# streampump-tls (within TLS_BUDGET_BYTES); the other targets one, with TLS.
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: size-table.sh BUDGET_BYTES TLS_BUDGET_BYTES NAME..."
budget=${1:?$usage}
tls_budget=${2:?$usage}
shift 2
over=""
echo "| target | binary | HTTPS | Rust target | stripped bytes | KiB | budget |"
echo "|---|---|---|---|---:|---:|---:|"
for name in "$@"; do
    case "$name" in
    x86_64) triple=x86_64-unknown-linux-musl ;;
    aarch64) triple=aarch64-unknown-linux-musl ;;
    armv7) triple=armv7-unknown-linux-musleabihf ;;
    mipsel) triple=mipsel-unknown-linux-musl ;;
    mips) triple=mips-unknown-linux-musl ;;
    *) triple="?" ;;
    esac
    case "$name" in
    mips*) variants="streampump:no:$budget streampump-tls:yes:$tls_budget" ;;
    *) variants="streampump:yes:" ;;
    esac
    for variant in $variants; do
        IFS=: read -r binary tls limit <<<"$variant"
        path=target/cross/$name/$binary
        if [ ! -f "$path" ]; then
            echo "| $name | $binary | $tls | $triple | not built (make $name) | | ${limit:--} |"
            # The budget is the point of this table: an unbuilt MIPS binary is not within it.
            [ -z "$limit" ] || over="$over $name/$binary (not built)"
            continue
        fi
        bytes=$(wc -c <"$path")
        echo "| $name | $binary | $tls | $triple | $bytes | $(((bytes + 512) / 1024)) | ${limit:--} |"
        if [ -n "$limit" ] && [ "$bytes" -gt "$limit" ]; then
            over="$over $name/$binary ($bytes bytes, budget $limit)"
        fi
    done
done
if [ -n "$over" ]; then
    echo "error: not shown to be within the MIPS budgets:$over" >&2
    exit 1
fi
