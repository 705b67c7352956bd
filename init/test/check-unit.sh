#!/usr/bin/env bash
# Checks the systemd unit without a running systemd (`make systemd-check`, part of `make lint`):
# - `systemd-analyze verify` on the unit as `make install` writes it; verify exits 0 on unknown
#   keys and bad values, so any output at all counts as a failure;
# - `systemd-analyze security --offline=true` must rate the exposure at or below THRESHOLD
#   (1.5 by default; the scale runs from 0, locked down, to 10, unprotected; "OK" ends at 2.0).
set -euo pipefail
cd "$(dirname "$0")/../.."

threshold=${THRESHOLD:-1.5}
command -v systemd-analyze >/dev/null 2>&1 || {
    echo "error: systemd-analyze is missing: install Debian's systemd package (sudo apt-get install systemd)" >&2
    exit 1
}

# Not under /tmp: with PrivateTmp=yes, verify rightly says the service could not see it there.
work=$PWD/target/unit-check
rm -rf "$work"
# verify also checks that ExecStart names an executable; stand in for the installed binary with
# the same substitution `make install` makes for BINDIR.
mkdir -p "$work/bin"
printf '#!/bin/sh\n' >"$work/bin/streampump"
chmod 0755 "$work/bin/streampump"
sed "s|/usr/local/bin/streampump|$work/bin/streampump|" init/streampump.service >"$work/streampump.service"

output=$(cd "$work" && systemd-analyze verify ./streampump.service 2>&1) || true
if [ -n "$output" ]; then
    echo "error: systemd-analyze verify init/streampump.service:" >&2
    echo "$output" >&2
    exit 1
fi

report=$(cd "$work" && systemd-analyze security --offline=true ./streampump.service 2>&1) || true
score=$(echo "$report" | sed -n 's/.*Overall exposure level for streampump.service: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || {
    echo "error: no exposure level in systemd-analyze security's report:" >&2
    echo "$report" >&2
    exit 1
}
if awk -v score="$score" -v limit="$threshold" 'BEGIN { exit !(score > limit) }'; then
    echo "error: init/streampump.service exposure $score is above $threshold; the weak spots:" >&2
    echo "$report" | grep '✗' >&2 || true
    exit 1
fi
echo "init/streampump.service: verify clean, exposure $score (threshold $threshold)"
