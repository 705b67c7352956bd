#!/usr/bin/env bash
# Runs openwrt/streampump/files/streampump.init under busybox sh against the stand-ins in
# stubs/ for each UCI configuration in cases/, and compares what procd would be asked to run
# with cases/NAME.expected (`make openwrt-check`, part of `make lint`).
#
#   cases/NAME.config     the /etc/config/streampump to load ("shipped" uses the packaged one)
#   cases/NAME.users      accounts that exist on the router (default: root nobody streampump)
#   cases/NAME.expected   the expected output; UPDATE=1 rewrites it from the actual output
#
# The init script asks the relay (`streampump --check`) whether a command line is valid, so
# STREAMPUMP_BIN must name a host build of it; it stands in for /usr/bin/streampump.
set -euo pipefail

relay=${STREAMPUMP_BIN:?STREAMPUMP_BIN must name a streampump binary built for this machine (make openwrt-check builds one)}
[ -x "$relay" ] || {
    echo "error: $relay is not an executable streampump; run cargo build first" >&2
    exit 1
}
relay=$(cd "$(dirname "$relay")" && pwd)/$(basename "$relay")
cd "$(dirname "$0")"

command -v busybox >/dev/null 2>&1 || {
    echo "error: busybox is missing: install Debian's busybox package (sudo apt-get install busybox)" >&2
    exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
difference=$work/difference
init=$work/streampump.init
sed "s|^PROG=/usr/bin/streampump\$|PROG=$relay|" ../streampump/files/streampump.init >"$init"
grep -q "^PROG=$relay\$" "$init" || {
    echo "error: the init script no longer sets PROG=/usr/bin/streampump; update this test" >&2
    exit 1
}
failed=0
count=0
for expected in cases/*.expected; do
    name=$(basename "$expected" .expected)
    config=cases/$name.config
    [ "$name" = shipped ] && config=../streampump/files/streampump.config
    users="root nobody streampump"
    [ -f "cases/$name.users" ] && users=$(cat "cases/$name.users")
    actual=$(STUB_UCI_CONFIG=$config STUB_USERS=$users busybox sh stubs/rc.common "$init" start 2>&1 |
        sed "s|$relay|/usr/bin/streampump|g") || true
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
