#!/usr/bin/env bash
# Prints the stripped size of every cross-built binary in target/cross as a Markdown table, and
# fails when a MIPS binary is over budget (routers with 8 MB of flash are the reason).
#   scripts/size-table.sh BUDGET_BYTES NAME...
set -euo pipefail
cd "$(dirname "$0")/.."

budget=${1:?usage: size-table.sh BUDGET_BYTES NAME...}
shift
over=""
echo "| target | Rust target | stripped bytes | KiB |"
echo "|---|---|---:|---:|"
for name in "$@"; do
    binary=target/cross/$name/streampump
    case "$name" in
    x86_64) triple=x86_64-unknown-linux-musl ;;
    aarch64) triple=aarch64-unknown-linux-musl ;;
    armv7) triple=armv7-unknown-linux-musleabihf ;;
    mipsel) triple=mipsel-unknown-linux-musl ;;
    mips) triple=mips-unknown-linux-musl ;;
    *) triple="?" ;;
    esac
    if [ ! -f "$binary" ]; then
        echo "| $name | $triple | not built (make $name) | |"
        # The budget is the point of this table: an unbuilt MIPS binary is not within it.
        case "$name" in mips*) over="$over $name (not built)" ;; esac
        continue
    fi
    bytes=$(wc -c <"$binary")
    echo "| $name | $triple | $bytes | $(((bytes + 512) / 1024)) |"
    case "$name" in
    mips*) [ "$bytes" -le "$budget" ] || over="$over $name ($bytes bytes)" ;;
    esac
done
if [ -n "$over" ]; then
    echo "error: not shown to be within the $budget-byte MIPS budget:$over" >&2
    exit 1
fi
