#!/usr/bin/env bash
# What HTTPS costs the relay: the same load pushed over its HTTPS port and over its plain port,
# side by side in one run against one relay process, in alternating rounds (`make bench-https`).
#
#   bench/https.sh                       the release build on this machine
#   RELAY_BIN=target/cross/mipsel/streampump-tls RUNNER=qemu-mipsel bench/https.sh
#                                        a cross build under qemu-user (indicative only: qemu
#                                        emulates the CPU, so absolute figures say little)
#
# Settings (environment): BENCH_DEVICES (10), BENCH_FPS (15), BENCH_FRAME_BYTES (61440),
# BENCH_VIEWERS (1 per device), BENCH_SECONDS (15), BENCH_ROUNDS (3). loadgen verifies the
# relay's certificate against the authority the relay made in a scratch state directory; its
# TLS handshakes happen before the measured window. The table (medians over the rounds) goes
# to standard output and to bench-results/https.md.
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICES=${BENCH_DEVICES:-10}
FPS=${BENCH_FPS:-15}
FRAME_BYTES=${BENCH_FRAME_BYTES:-61440}
VIEWERS=${BENCH_VIEWERS:-1}
SECONDS_MEASURED=${BENCH_SECONDS:-15}
ROUNDS=${BENCH_ROUNDS:-3}
RELAY_BIN=${RELAY_BIN:-target/release/streampump}
RUNNER=${RUNNER:-}
LOADGEN=target/bench-tool/examples/loadgen
OUT=bench-results
PORT=19996
TLS_PORT=19446

say() {
    echo "bench-https: $*" >&2
}

die() {
    say "$*"
    exit 1
}

if [ "$RELAY_BIN" = target/release/streampump ]; then
    say "building streampump (release)"
    cargo build --release --locked
fi
say "building loadgen (bench-tool profile)"
cargo build --profile bench-tool --locked --example loadgen
[ -x "$RELAY_BIN" ] || die "$RELAY_BIN is missing (make mipsel, or cargo build --release)"

scratch=$(mktemp -d)
relay_pid=""
cleanup() {
    if [ -n "$relay_pid" ]; then
        kill "$relay_pid" 2>/dev/null || true
        wait "$relay_pid" 2>/dev/null || true
    fi
    rm -rf "$scratch"
}
trap cleanup EXIT

# shellcheck disable=SC2086 # RUNNER is a command and its arguments, or nothing
$RUNNER "$RELAY_BIN" --listen "127.0.0.1:$PORT" --tls-listen "127.0.0.1:$TLS_PORT" \
    --state-dir "$scratch/state" >"$scratch/relay.log" 2>&1 &
relay_pid=$!
for _ in $(seq 1 300); do
    grep -q "HTTPS on" "$scratch/relay.log" 2>/dev/null && break
    kill -0 "$relay_pid" 2>/dev/null || die "the relay exited: $(tail -n 5 "$scratch/relay.log")"
    sleep 0.1
done
grep -q "HTTPS on" "$scratch/relay.log" || die "the relay did not start HTTPS within 30 s"

mkdir -p "$OUT"
for round in $(seq 1 "$ROUNDS"); do
    for scheme in http https; do
        if [ "$scheme" = https ]; then
            url="https://127.0.0.1:$TLS_PORT"
            tls=(--ca-file "$scratch/state/ca.crt")
        else
            url="http://127.0.0.1:$PORT"
            tls=()
        fi
        say "round $round: $scheme, $DEVICES devices x $VIEWERS viewers at $FPS fps, $FRAME_BYTES-byte frames"
        "$LOADGEN" --url "$url" "${tls[@]}" --devices "$DEVICES" --viewers "$VIEWERS" \
            --fps "$FPS" --frame-bytes "$FRAME_BYTES" --duration "$SECONDS_MEASURED" \
            --device-prefix "${scheme}${round}_" --pid "$relay_pid" --label "$scheme" --json \
            >>"$scratch/runs.jsonl" 2>"$scratch/loadgen.log" ||
            die "loadgen failed: $(tail -n 5 "$scratch/loadgen.log")"
    done
done

python3 - "$scratch/runs.jsonl" "$RELAY_BIN" "${RUNNER:-native}" "$ROUNDS" <<'EOF' | tee "$OUT/https.md"
import json, statistics, sys

runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
binary, runner, rounds = sys.argv[2], sys.argv[3], sys.argv[4]
rows = [
    ("server CPU per 1000 fresh frames (ms)", "cpu_ms_per_1000_fresh"),
    ("relay latency p50 (ms)", "latency_p50_ms"),
    ("relay latency p99 (ms)", "latency_p99_ms"),
    ("push round trip p50 (ms)", "push_rtt_p50_ms"),
    ("push round trip p99 (ms)", "push_rtt_p99_ms"),
    ("fresh frames per viewer (/s)", "fresh_fps_mean"),
    ("push errors", "push_errors"),
    ("viewer errors", "viewer_errors"),
    ("peak RSS (KB)", "rss_peak_kb"),
    ("peak threads", "threads_peak"),
]
first = runs[0]
print(f"{first['devices']} devices x {first['viewers_per_device']} viewer(s), {first['fps']:g} fps, "
      f"{first['frame_bytes']}-byte frames, {first['duration_s']:g} s per run, medians of {rounds} "
      f"alternating rounds; relay {binary} ({runner})\n")
print("| | HTTP | HTTPS | HTTPS / HTTP |")
print("|---|---:|---:|---:|")
for title, key in rows:
    medians = []
    for label in ("http", "https"):
        values = [run[key] for run in runs if run["label"] == label and run.get(key) is not None]
        medians.append(statistics.median(values) if values else None)
    http, https = medians
    ratio = f"{https / http:.2f}" if http and https is not None else "-"
    show = lambda v: "-" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))
    print(f"| {title} | {show(http)} | {show(https)} | {ratio} |")
EOF
