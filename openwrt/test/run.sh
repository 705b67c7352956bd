#!/usr/bin/env bash
# Runs openwrt/streampump/files/streampump.init under busybox sh against the stand-ins in
# stubs/ for each UCI configuration in cases/, and compares what procd would be asked to run
# with cases/NAME.expected (`make openwrt-check`, part of `make lint`).
#
#   cases/NAME.config     the /etc/config/streampump to load ("shipped" uses the packaged one)
#   cases/NAME.users      accounts that exist on the router (default: root nobody streampump)
#   cases/NAME.expected   the expected output; UPDATE=1 rewrites it from the actual output
set -euo pipefail
cd "$(dirname "$0")"

command -v busybox >/dev/null 2>&1 || {
    echo "error: busybox is missing: install Debian's busybox package (sudo apt-get install busybox)" >&2
    exit 1
}

init=../streampump/files/streampump.init
difference=$(mktemp)
trap 'rm -f "$difference"' EXIT
failed=0
count=0
for expected in cases/*.expected; do
    name=$(basename "$expected" .expected)
    config=cases/$name.config
    [ "$name" = shipped ] && config=../streampump/files/streampump.config
    users="root nobody streampump"
    [ -f "cases/$name.users" ] && users=$(cat "cases/$name.users")
    actual=$(STUB_UCI_CONFIG=$config STUB_USERS=$users busybox sh stubs/rc.common "$init" start 2>&1) || true
    count=$((count + 1))
    if [ "${UPDATE:-0}" = 1 ]; then
        printf '%s\n' "$actual" >"$expected"
    elif ! diff -u "$expected" <(printf '%s\n' "$actual") >"$difference"; then
        echo "FAIL: $name: the init script asked procd for something else:" >&2
        cat "$difference" >&2
        failed=$((failed + 1))
    fi
done
[ "$count" -gt 0 ] || {
    echo "error: no cases in openwrt/test/cases" >&2
    exit 1
}
if [ "$failed" -gt 0 ]; then
    echo "openwrt init script: $failed of $count cases failed" >&2
    exit 1
fi
echo "openwrt init script: $count cases match"
