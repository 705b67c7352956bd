#!/usr/bin/env bash
# Packs each cross-built binary with its service files into
# target/dist/streampump-VERSION-NAME.tar.gz and writes SHA256SUMS (`make dist`, `make dist-NAME`).
#   scripts/dist.sh VERSION NAME...
#
# The tarballs are reproducible: sorted names, fixed owner and modes, and every file dated by
# the last commit (or SOURCE_DATE_EPOCH), so the same tree gives the same checksums.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${1:?usage: dist.sh VERSION NAME...}
shift
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
dist=target/dist
stage=$dist/stage
# Only this run's stage is cleared: `make dist-pi` then `make dist-mipsel` leaves both tarballs.
rm -rf "$stage"
mkdir -p "$stage"

for name in "$@"; do
    binary=target/cross/$name/streampump
    [ -f "$binary" ] || {
        echo "error: $binary is missing: make $name" >&2
        exit 1
    }
    root=streampump-$version-$name
    dir=$stage/$root
    install -D -m 0755 "$binary" "$dir/streampump"
    # mips and mipsel: the HTTPS build beside the plain one (see scripts/build-target.sh).
    if [ -f "target/cross/$name/streampump-tls" ]; then
        install -D -m 0755 "target/cross/$name/streampump-tls" "$dir/streampump-tls"
    fi
    # The README and the pages it links, so that its links work in the unpacked tarball.
    for doc in README.md LICENSE RELIABILITY.md BENCHMARKS.md docs/*.md docs/img/*.png; do
        install -D -m 0644 "$doc" "$dir/$doc"
    done
    install -D -m 0755 openwrt/streampump/files/streampump.init "$dir/openwrt/streampump.init"
    install -D -m 0644 openwrt/streampump/files/streampump.config "$dir/openwrt/streampump.config"
    install -D -m 0644 init/streampump.service "$dir/systemd/streampump.service"
    install -D -m 0644 init/streampump.default "$dir/systemd/streampump.default"
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
        -C "$stage" -cf - "$root" | gzip -n -9 >"$dist/$root.tar.gz"
done
rm -rf "$stage"
# Every tarball in target/dist, this run's and earlier ones'.
(cd "$dist" && sha256sum -- *.tar.gz >SHA256SUMS)
cat "$dist/SHA256SUMS"
