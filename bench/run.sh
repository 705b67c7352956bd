#!/usr/bin/env bash
# Benchmarks streampump against the reference Go "stream pump", side by side, with loadgen
# (examples/loadgen). Run from anywhere as `make bench` or `bench/run.sh`.
#
# For every scenario a fresh streampump (127.0.0.1:19998) and then a fresh reference server
# (its port 19999 is hard-coded) are started, driven by loadgen with --pid so their CPU time,
# memory and threads are sampled, and stopped again by the PID this script recorded. Results go
# to standard output and to bench-results/latest.md; each run's JSON, loadgen table and server
# log are kept in bench-results/runs/ for a closer look.
#
# Environment:
#   BENCH_SECONDS   measured seconds per run (default 15); each run adds 2 s of warm-up
#   SEED_PUMP_DIR   source of the reference server (default ../shared/reference/seed-pump,
#                   relative to the repository root); needs Go (Debian: golang-go)
#   RELAY_TARGET    build and measure streampump for this Rust target instead of the host's
#                   default, e.g. x86_64-unknown-linux-musl for the static build that ships
#   BENCH_ONLY      "auth": only the access-control comparison (streampump without and with
#                   credentials; needs no Go)
#   BENCH_BASELINE  a git commit (e.g. HEAD~1): instead of the reference comparison, compare the
#                   relay built from the working tree (the candidate) with the relay built at
#                   that commit (the baseline) at 10 × 10 and 2 × 100, in alternating rounds;
#                   needs no Go; results in bench-results/baseline.md
#   BENCH_ROUNDS    rounds of that comparison (default 3); each round runs both binaries on
#                   both scenarios, the order of the two swapped from one round to the next
#
# Both servers and loadgen share this machine's cores, so absolute numbers include loadgen's
# own cost; the ratios are the point.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly RELAY_PORT=19998
readonly REFERENCE_PORT=19999
readonly RESULTS_DIR=bench-results
readonly RUNS_DIR="$RESULTS_DIR/runs"
readonly REPORT="$RESULTS_DIR/latest.md"
readonly LOADGEN=target/bench-tool/examples/loadgen
RELAY_TARGET="${RELAY_TARGET:-}"
if [[ -n "$RELAY_TARGET" ]]; then
    readonly RELAY_BIN="target/$RELAY_TARGET/release/streampump"
    readonly RELAY_BUILD=(--target "$RELAY_TARGET")
else
    readonly RELAY_BIN=target/release/streampump
    readonly RELAY_BUILD=()
fi
readonly REFERENCE_BIN=target/seed-pump
# The baseline comparison (BENCH_BASELINE): the baseline relay listens on a port of its own, is
# built from a copy of its commit's files that is removed again once built, and keeps its own
# cargo target directory so that only the relay itself is rebuilt next time.
readonly BASELINE_PORT=19997
readonly BASELINE_SRC=target/bench-baseline-src
readonly BASELINE_TARGET_DIR=target/bench-baseline-build
readonly BASELINE_REPORT="$RESULTS_DIR/baseline.md"
# Relay targets (set for 10×10, also shown for 2×100). Threads: 1 per connection (viewer or pusher)
# plus this many: main (the accept loop), housekeeping, and a few connections of loadgen's own
# (its status requests).
readonly THREADS_CONSTANT=4

BENCH_SECONDS="${BENCH_SECONDS:-15}"
BENCH_ROUNDS="${BENCH_ROUNDS:-3}"
SEED_PUMP_DIR="${SEED_PUMP_DIR:-../shared/reference/seed-pump}"

# The server this script started and has not stopped yet (empty when none).
SERVER_PID=""
FAILED_RUNS=0
# The loadgen run in progress (empty when none).
LOADGEN_PID=""
# Set once this run has created $BASELINE_SRC, which is then removed on exit.
BASELINE_SRC_MADE=""

die() {
    echo "bench: $*" >&2
    exit 1
}

say() {
    echo "bench: $*" >&2
}

stop_server() {
    if [[ -z "$SERVER_PID" ]]; then
        return 0
    fi
    local pid="$SERVER_PID"
    SERVER_PID=""
    kill "$pid" 2>/dev/null || true
    local waited=0
    while kill -0 "$pid" 2>/dev/null && ((waited < 30)); do
        sleep 0.1
        waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "server $pid ignored SIGTERM; sending SIGKILL"
        kill -9 "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

remove_baseline_src() {
    if [[ -n "$BASELINE_SRC_MADE" ]]; then
        rm -rf "$BASELINE_SRC"
        BASELINE_SRC_MADE=""
    fi
}

stop_loadgen() {
    if [[ -n "$LOADGEN_PID" ]]; then
        kill "$LOADGEN_PID" 2>/dev/null || true
        wait "$LOADGEN_PID" 2>/dev/null || true
        LOADGEN_PID=""
    fi
}

cleanup() {
    stop_loadgen
    stop_server
    remove_baseline_src
}

trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

port_in_use() {
    # A successful connect means something listens there.
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_for_port PORT LOG: waits up to 5 s for the server just started to accept connections.
wait_for_port() {
    local port="$1" log="$2" tries=0
    until port_in_use "$port"; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            die "the server on port $port exited at start; its log ($log) says: $(tail -n 5 "$log")"
        fi
        ((tries++ < 50)) || die "nothing accepted connections on port $port within 5 s (see $log)"
        sleep 0.1
    done
}

# start_server NAME PORT LOG COMMAND...: starts one server in the background and records its PID.
start_server() {
    local name="$1" port="$2" log="$3"
    shift 3
    if port_in_use "$port"; then
        die "port $port is already in use; stop whatever listens there before benchmarking ($name needs it)"
    fi
    RUST_LOG=warn "$@" >"$log" 2>&1 &
    SERVER_PID=$!
    wait_for_port "$port" "$log"
}

# field FILE KEY: one value of loadgen's flat JSON (strings without their quotes, null as is).
field() {
    sed -n "s/.*\"$2\":\(\"[^\"]*\"\|[^,}]*\).*/\1/p" "$1" | sed 's/^"\(.*\)"$/\1/'
}

# fmt NUMBER [DECIMALS]: a number rounded for the table, or n/a.
fmt() {
    local value="$1" decimals="${2:-2}"
    if [[ -z "$value" || "$value" == null ]]; then
        echo "n/a"
    else
        awk -v v="$value" -v d="$decimals" 'BEGIN { printf "%.*f", d, v }'
    fi
}

# ratio A B: A / B as "12.3×", or n/a.
ratio() {
    local a="$1" b="$2"
    if [[ -z "$a" || -z "$b" || "$a" == null || "$b" == null ]]; then
        echo "n/a"
    else
        awk -v a="$a" -v b="$b" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f×", a / b }'
    fi
}

# kb_to_mb KB
kb_to_mb() {
    if [[ -z "$1" || "$1" == null ]]; then echo null; else awk -v k="$1" 'BEGIN { printf "%.3f", k / 1024 }'; fi
}

# errors FILE PREFIX: "0" or "3 (http 503: 3)".
errors() {
    local count kinds
    count="$(field "$1" "$2_errors")"
    kinds="$(field "$1" "$2_errors_by_kind")"
    if [[ "$count" == 0 ]]; then echo 0; else echo "$count ($kinds)"; fi
}

# run_loadgen SERVER SCENARIO PORT PID LOADGEN_ARGS...: one measured run; its JSON lands in
# $RUNS_DIR/SCENARIO-SERVER.json. Returns non-zero if loadgen failed.
run_loadgen() {
    local server="$1" scenario="$2" port="$3" pid="$4"
    shift 4
    local base="$RUNS_DIR/$scenario-$server"
    say "$scenario: measuring $server for ${BENCH_SECONDS} s"
    # loadgen stops by itself after warm-up, measurement and a bounded wind-down; the timeout
    # only keeps a wedged run from holding up the whole benchmark. It runs in the background so
    # that an interrupt reaches this script's trap at once, which then stops it by its PID.
    timeout --kill-after=5 $((BENCH_SECONDS + 60)) \
        "$LOADGEN" --url "http://127.0.0.1:$port" --pid "$pid" --label "$server" \
        --duration "$BENCH_SECONDS" --json "$@" >"$base.json" 2>"$base.txt" &
    LOADGEN_PID=$!
    local status=0
    wait "$LOADGEN_PID" || status=$?
    LOADGEN_PID=""
    if ((status != 0)); then
        say "$scenario: loadgen failed against $server: $(tail -n 3 "$base.txt")"
        return 1
    fi
    if [[ "$(field "$base.json" server_lost)" == true ]]; then
        say "$scenario: WARNING: $server died or vanished during the run (see $base.log)"
    fi
}

# table SCENARIO TITLE: the side-by-side markdown table of one scenario.
table() {
    local scenario="$1" title="$2"
    local relay="$RUNS_DIR/$scenario-streampump.json" ref="$RUNS_DIR/$scenario-reference.json"
    echo "### $title"
    echo
    echo "| metric | streampump | reference | reference / streampump |"
    echo "|---|---:|---:|---:|"
    local key label decimals
    while IFS='|' read -r key label decimals; do
        local a b
        a="$(field "$relay" "$key")"
        b="$(field "$ref" "$key")"
        local r=""
        case "$key" in
            latency_p50_ms | latency_p99_ms | latency_max_ms | cpu_ms_per_1000_fresh) r="$(ratio "$b" "$a")" ;;
        esac
        echo "| $label | $(fmt "$a" "$decimals") | $(fmt "$b" "$decimals") | $r |"
    done <<'ROWS'
latency_p50_ms|relay latency p50 (ms)|3
latency_p99_ms|relay latency p99 (ms)|3
latency_max_ms|relay latency max (ms)|3
push_rtt_p50_ms|push round trip p50 (ms)|3
push_rtt_p99_ms|push round trip p99 (ms)|3
push_rate_per_device|pushes accepted per s per device|2
fresh_fps_mean|fresh frames/s per viewer, mean|2
fresh_fps_min|fresh frames/s per viewer, min|2
repeat_fps_mean|repeats/s per viewer|2
fresh_total|fresh frames delivered|0
cpu_s|server CPU in the window (s)|2
cpu_ms_per_1000_fresh|server CPU ms per 1000 fresh frames|1
loadgen_cpu_s|loadgen's own CPU in the window (s)|2
ROWS
    local rss_a rss_b
    rss_a="$(kb_to_mb "$(field "$relay" rss_peak_kb)")"
    rss_b="$(kb_to_mb "$(field "$ref" rss_peak_kb)")"
    echo "| peak RSS (MB) | $(fmt "$rss_a" 1) | $(fmt "$rss_b" 1) | $(ratio "$rss_b" "$rss_a") |"
    echo "| peak threads | $(fmt "$(field "$relay" threads_peak)" 0) | $(fmt "$(field "$ref" threads_peak)" 0) | |"
    if [[ "$(field "$relay" slow_per_device)" != 0 ]]; then
        echo "| slow viewers: parts/s each | $(fmt "$(field "$relay" slow_parts_per_s_mean)") | $(fmt "$(field "$ref" slow_parts_per_s_mean)") | |"
    fi
    if [[ "$(field "$relay" stalled_per_device)" != 0 ]]; then
        echo "| stalled viewers held | $(field "$relay" stalled_held) | $(field "$ref" stalled_held) | |"
    fi
    echo "| push errors (whole run) | $(errors "$relay" push) | $(errors "$ref" push) | |"
    echo "| viewer errors (whole run) | $(errors "$relay" viewer) | $(errors "$ref" viewer) | |"
    echo "| streams opened / reading viewers | $(field "$relay" streams_opened) / $(field "$relay" reading_viewers) | $(field "$ref" streams_opened) / $(field "$ref" reading_viewers) | |"
    echo
}

# check LABEL MEASURED_TEXT GOAL_TEXT AWK_CONDITION VALUES...: one row of the target table.
check() {
    local label="$1" measured="$2" goal="$3" condition="$4"
    shift 4
    local value met="n/a (not measured)"
    for value in "$@"; do
        if [[ -z "$value" || "$value" == null ]]; then
            echo "| $label | $measured | $goal | $met |"
            return
        fi
    done
    met="$(awk -v a="${1:-0}" -v b="${2:-0}" "BEGIN { print (($condition) ? \"yes\" : \"**no**\") }")"
    echo "| $label | $measured | $goal | $met |"
}

# targets SCENARIO VIEWERS PUSHERS: how the relay fares against its goals in this scenario.
targets() {
    local scenario="$1" viewers="$2" pushers="$3"
    local relay="$RUNS_DIR/$scenario-streampump.json" ref="$RUNS_DIR/$scenario-reference.json"
    local p50 p99 cpu cpu_ref rss threads thread_limit cpu_limit
    p50="$(field "$relay" latency_p50_ms)"
    p99="$(field "$relay" latency_p99_ms)"
    cpu="$(field "$relay" cpu_ms_per_1000_fresh)"
    cpu_ref="$(field "$ref" cpu_ms_per_1000_fresh)"
    rss="$(kb_to_mb "$(field "$relay" rss_peak_kb)")"
    threads="$(field "$relay" threads_peak)"
    thread_limit=$((viewers + pushers + THREADS_CONSTANT))
    cpu_limit="$(fmt "$(awk -v r="${cpu_ref/null/}" 'BEGIN { if (r == "") print "null"; else print r / 3 }')" 1)"
    echo "#### streampump against its targets ($scenario)"
    echo
    echo "| target | measured | goal | met |"
    echo "|---|---:|---:|---|"
    check "relay latency p50" "$(fmt "$p50" 3) ms" "< 1 ms" "a < 1" "$p50"
    check "relay latency p99" "$(fmt "$p99" 3) ms" "< 5 ms" "a < 5" "$p99"
    check "CPU per fresh frame" "$(fmt "$cpu" 1) ms / 1000 ($(ratio "$cpu" "$cpu_ref") of reference)" \
        "≤ 1/3 of reference (≤ $cpu_limit ms / 1000)" "a * 3 <= b" "$cpu" "$cpu_ref"
    check "peak RSS" "$(fmt "$rss" 1) MB" "< 8 MB" "a < 8" "$rss"
    check "peak threads" "$(fmt "$threads" 0) for $viewers viewers and $pushers pushers" \
        "≤ 1 per connection + $THREADS_CONSTANT = $thread_limit" "a <= $thread_limit" "$threads"
    echo
}

# scenario NAME TITLE DEVICES VIEWERS FPS FRAME_BYTES SLOW STALLED [STREAMPUMP_FLAGS...]
scenario() {
    local name="$1" title="$2" devices="$3" viewers="$4" fps="$5" bytes="$6" slow="$7" stalled="$8"
    shift 8
    local load=(--devices "$devices" --viewers "$viewers" --fps "$fps" --frame-bytes "$bytes"
        --slow "$slow" --stalled "$stalled")
    local ok=1

    start_server streampump "$RELAY_PORT" "$RUNS_DIR/$name-streampump.log" \
        "$RELAY_BIN" --listen "127.0.0.1:$RELAY_PORT" --tls-listen off "$@"
    run_loadgen streampump "$name" "$RELAY_PORT" "$SERVER_PID" "${load[@]}" || ok=0
    stop_server

    start_server reference "$REFERENCE_PORT" "$RUNS_DIR/$name-reference.log" "$REFERENCE_BIN"
    run_loadgen reference "$name" "$REFERENCE_PORT" "$SERVER_PID" "${load[@]}" || ok=0
    stop_server

    if ((ok == 0)); then
        FAILED_RUNS=$((FAILED_RUNS + 1))
        printf '### %s\n\nrun failed; see %s/%s-*.txt\n\n' "$title" "$RUNS_DIR" "$name" | tee -a "$REPORT.partial"
        return
    fi
    {
        table "$name" "$title"
        if (($# > 0)); then
            printf 'streampump ran with %s in this scenario.\n\n' "$*"
        fi
        if [[ "$name" == 10x10 || "$name" == 2x100 ]]; then
            targets "$name" $((devices * viewers)) "$devices"
        fi
    } | tee -a "$REPORT.partial"
}

# auth_only: BENCH_ONLY=auth, the access-control comparison alone.
auth_only() {
    say "building streampump (release) and loadgen (bench-tool profile)"
    cargo build --release --quiet "${RELAY_BUILD[@]}" || die "cannot build streampump"
    cargo build --profile bench-tool --example loadgen --quiet
    mkdir -p "$RUNS_DIR"
    rm -f "$RUNS_DIR"/auth-* "$REPORT.partial"
    {
        echo "# streampump with and without access control"
        echo
        echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)," \
            "$(nproc) cores, command: \`BENCH_ONLY=auth BENCH_SECONDS=$BENCH_SECONDS bench/run.sh\`," \
            "streampump $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
        echo
    } | tee "$REPORT.partial"
    auth_comparison
    mv "$REPORT.partial" "$RESULTS_DIR/auth.md"
    say "written to $RESULTS_DIR/auth.md"
    ((FAILED_RUNS == 0)) || die "the comparison had a failed run"
}

# median N...: the middle value (of an odd count; the upper middle of an even one).
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int(NR / 2) + 1] }'
}

# auth_comparison: streampump without and with access control under the same load (10 × 10,
# 15 fps, 60 KB frames), in AUTH_ROUNDS alternating pairs so that drift on a shared machine hits
# both alike. With access control every push carries a Bearer token and every viewer a Basic
# login, both checked in constant time on every request; the table gives medians over rounds.
auth_comparison() {
    local rounds="${AUTH_ROUNDS:-3}" round ok=1
    local load=(--devices 10 --viewers 10 --fps 15 --frame-bytes 61440)
    local secrets=(--push-token bench-push-token --view-user bench --view-password bench-view-pass)
    local credentials=(--push-token bench-push-token --view-login bench:bench-view-pass)
    for round in $(seq 1 "$rounds"); do
        start_server streampump "$RELAY_PORT" "$RUNS_DIR/auth-open-$round.log" \
            "$RELAY_BIN" --listen "127.0.0.1:$RELAY_PORT" --tls-listen off
        run_loadgen "open-$round" auth "$RELAY_PORT" "$SERVER_PID" "${load[@]}" || ok=0
        stop_server
        start_server streampump "$RELAY_PORT" "$RUNS_DIR/auth-protected-$round.log" \
            "$RELAY_BIN" --listen "127.0.0.1:$RELAY_PORT" --tls-listen off "${secrets[@]}"
        run_loadgen "protected-$round" auth "$RELAY_PORT" "$SERVER_PID" "${load[@]}" \
            "${credentials[@]}" || ok=0
        stop_server
    done
    if ((ok == 0)); then
        FAILED_RUNS=$((FAILED_RUNS + 1))
        printf '### access control\n\nrun failed; see %s/auth-*.txt\n\n' "$RUNS_DIR" | tee -a "$REPORT.partial"
        return
    fi
    {
        echo "### Access control: streampump open and with credentials, 10 devices × 10 viewers, 15 fps, 60 KB frames"
        echo
        echo "Medians of $rounds alternating runs each. Protected: \`${secrets[*]}\`; loadgen sends the push"
        echo "token with every push and the login with every stream request."
        echo
        echo "| metric | open | protected | protected / open |"
        echo "|---|---:|---:|---:|"
        local key label decimals side values open protected
        while IFS='|' read -r key label decimals; do
            for side in open protected; do
                values=()
                for round in $(seq 1 "$rounds"); do
                    values+=("$(field "$RUNS_DIR/auth-$side-$round.json" "$key")")
                done
                printf -v "$side" '%s' "$(median "${values[@]}")"
            done
            # shellcheck disable=SC2154 # open and protected are set through printf -v
            echo "| $label | $(fmt "$open" "$decimals") | $(fmt "$protected" "$decimals") | $(ratio "$protected" "$open") |"
        done <<'ROWS'
latency_p50_ms|relay latency p50 (ms)|3
latency_p99_ms|relay latency p99 (ms)|3
push_rtt_p50_ms|push round trip p50 (ms)|3
push_rtt_p99_ms|push round trip p99 (ms)|3
fresh_fps_mean|fresh frames/s per viewer, mean|2
cpu_ms_per_1000_fresh|server CPU ms per 1000 fresh frames|1
push_errors|push errors (whole run)|0
viewer_errors|viewer errors (whole run)|0
ROWS
        echo
    } | tee -a "$REPORT.partial"
}

# ---- BENCH_BASELINE: the working tree against the relay at an earlier commit ----

# The loads of the comparison, as NAME|TITLE|LOADGEN FLAGS|RELAY FLAGS. 100 viewers per device
# is over the relay's default --max-viewers (32), so both binaries get it raised there.
readonly BASELINE_SCENARIOS=(
    "10x10|10 devices × 10 viewers, 15 fps, 60 KB frames|--devices 10 --viewers 10 --fps 15 --frame-bytes 61440|"
    "2x100|2 devices × 100 viewers, 10 fps, 30 KB frames|--devices 2 --viewers 100 --fps 10 --frame-bytes 30720|--max-viewers 100"
)

# tree_commit: the short id of HEAD, and whether the files the relay is built from differ.
tree_commit() {
    local commit
    commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [[ -n "$(git status --porcelain -- src Cargo.toml Cargo.lock build.rs build_support assets 2>/dev/null)" ]]; then
        commit="$commit + uncommitted changes"
    fi
    echo "$commit"
}

# build_baseline COMMIT: builds the relay at COMMIT with cargo build --release --locked, from a
# copy of that commit's files in $BASELINE_SRC that is removed again once the binary is built.
build_baseline() {
    local commit="$1" root
    root="$(pwd)"
    rm -rf "$BASELINE_SRC"
    BASELINE_SRC_MADE=1
    mkdir -p "$BASELINE_SRC"
    # --touch: the files are dated now, not at the commit, so cargo never mistakes the build
    # of another commit left in $BASELINE_TARGET_DIR for an up-to-date one.
    git archive --format=tar "$commit" | tar -x --touch -C "$BASELINE_SRC" ||
        die "cannot extract commit $commit into $BASELINE_SRC"
    (cd "$BASELINE_SRC" && CARGO_TARGET_DIR="$root/$BASELINE_TARGET_DIR" \
        cargo build --release --locked --quiet "${RELAY_BUILD[@]}") ||
        die "cannot build streampump at commit $commit"
    remove_baseline_src
}

# spread VALUES...: "MEDIAN MIN MAX COUNT" of the numbers given, empty and null ones skipped
# (the median of an even count is the mean of the middle two), or "null null null 0".
spread() {
    printf '%s\n' "$@" | awk '$1 != "" && $1 != "null"' | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "null null null 0"; exit }
            m = (NR % 2 == 1) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            print m, v[1], v[NR], NR
        }'
}

# scaled VALUE DIVISOR: VALUE / DIVISOR, or null.
scaled() {
    if [[ -z "$1" || "$1" == null ]]; then echo null; else awk -v v="$1" -v d="$2" 'BEGIN { printf "%.6f\n", v / d }'; fi
}

# run_file SCENARIO SIDE ROUND: the JSON of one kept run (failed runs are renamed away).
run_file() {
    echo "$RUNS_DIR/cmp-$1-$2-$3.json"
}

# side_values SCENARIO SIDE KEY DIVISOR: KEY / DIVISOR from every kept run of SIDE, one a line.
side_values() {
    local round file
    for round in $(seq 1 "$BENCH_ROUNDS"); do
        file="$(run_file "$1" "$2" "$round")"
        if [[ -f "$file" ]]; then
            scaled "$(field "$file" "$3")" "$4"
        fi
    done
}

# round_ratios SCENARIO KEY: baseline / candidate for every round where both runs were kept.
round_ratios() {
    local round a b
    for round in $(seq 1 "$BENCH_ROUNDS"); do
        if [[ -f "$(run_file "$1" candidate "$round")" && -f "$(run_file "$1" baseline "$round")" ]]; then
            a="$(field "$(run_file "$1" candidate "$round")" "$2")"
            b="$(field "$(run_file "$1" baseline "$round")" "$2")"
            awk -v a="$a" -v b="$b" 'BEGIN { if (a != "null" && b != "null" && a + 0 != 0) printf "%.6f\n", b / a }'
        fi
    done
}

# cell MEDIAN MIN MAX COUNT DECIMALS: "median (min–max)", or the median alone for one run.
cell() {
    if [[ "$4" == 0 ]]; then
        echo "n/a"
    elif [[ "$4" == 1 ]]; then
        fmt "$1" "$5"
    else
        echo "$(fmt "$1" "$5") ($(fmt "$2" "$5")–$(fmt "$3" "$5"))"
    fi
}

# baseline_table SCENARIO TITLE: the candidate and the baseline side by side in one scenario.
baseline_table() {
    local name="$1" title="$2"
    echo "### $title"
    echo
    echo "| metric | candidate | baseline | baseline / candidate | per-round ratios |"
    echo "|---|---:|---:|---:|---:|"
    local key label decimals divisor values c_med c_min c_max c_n b_med b_min b_max b_n
    local r_min r_max r_n ratios
    while IFS='|' read -r key label decimals divisor; do
        mapfile -t values < <(side_values "$name" candidate "$key" "$divisor")
        read -r c_med c_min c_max c_n <<<"$(spread "${values[@]}")"
        mapfile -t values < <(side_values "$name" baseline "$key" "$divisor")
        read -r b_med b_min b_max b_n <<<"$(spread "${values[@]}")"
        mapfile -t values < <(round_ratios "$name" "$key")
        read -r _ r_min r_max r_n <<<"$(spread "${values[@]}")"
        ratios="n/a"
        if ((r_n == 1)); then
            ratios="$(fmt "$r_min" 2)×"
        elif ((r_n > 1)); then
            ratios="$(fmt "$r_min" 2)–$(fmt "$r_max" 2)×"
        fi
        echo "| $label | $(cell "$c_med" "$c_min" "$c_max" "$c_n" "$decimals")" \
            "| $(cell "$b_med" "$b_min" "$b_max" "$b_n" "$decimals")" \
            "| $(ratio "$b_med" "$c_med") | $ratios |"
    done <<'ROWS'
latency_p50_ms|relay latency p50 (ms)|3|1
latency_p99_ms|relay latency p99 (ms)|3|1
cpu_ms_per_1000_fresh|server CPU ms per 1000 fresh frames|1|1
rss_peak_kb|peak RSS (MB)|1|1024
threads_peak|peak threads|0|1
push_rtt_p50_ms|push round trip p50 (ms)|3|1
push_rtt_p99_ms|push round trip p99 (ms)|3|1
fresh_fps_mean|fresh frames/s per viewer, mean|2|1
ROWS
    local side kept push viewer round file
    for side in candidate baseline; do
        kept=0 push=0 viewer=0
        for round in $(seq 1 "$BENCH_ROUNDS"); do
            file="$(run_file "$name" "$side" "$round")"
            if [[ -f "$file" ]]; then
                kept=$((kept + 1))
                push=$((push + $(field "$file" push_errors)))
                viewer=$((viewer + $(field "$file" viewer_errors)))
            fi
        done
        printf -v "kept_$side" '%s' "$kept of $BENCH_ROUNDS"
        printf -v "errors_$side" '%s' "$push / $viewer"
    done
    # shellcheck disable=SC2154 # kept_* and errors_* are set through printf -v
    {
        echo "| push / viewer errors (kept runs, summed) | $errors_candidate | $errors_baseline | | |"
        echo "| runs kept | $kept_candidate | $kept_baseline | | |"
    }
    echo
}

# baseline_only: BENCH_BASELINE=COMMIT, the working tree against COMMIT, in alternating rounds.
baseline_only() {
    [[ "$BENCH_ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a whole number of rounds, got '$BENCH_ROUNDS'"
    git rev-parse --git-dir >/dev/null 2>&1 || die "BENCH_BASELINE needs a git checkout of streampump"
    local baseline_full baseline_commit candidate_commit
    baseline_full="$(git rev-parse --verify --quiet "$BENCH_BASELINE^{commit}")" ||
        die "BENCH_BASELINE=$BENCH_BASELINE is not a commit of this repository"
    baseline_commit="$(git rev-parse --short "$baseline_full")"
    candidate_commit="$(tree_commit)"
    local baseline_bin="$BASELINE_TARGET_DIR${RELAY_TARGET:+/$RELAY_TARGET}/release/streampump"

    say "building the candidate ($candidate_commit, the working tree) and loadgen"
    cargo build --release --locked --quiet "${RELAY_BUILD[@]}" ||
        die "cannot build streampump${RELAY_TARGET:+ for $RELAY_TARGET (rustup target add $RELAY_TARGET)}"
    cargo build --locked --profile bench-tool --example loadgen --quiet || die "cannot build loadgen"
    say "building the baseline ($baseline_commit) in $BASELINE_SRC"
    build_baseline "$baseline_full"
    [[ -x "$baseline_bin" ]] || die "the baseline build left no $baseline_bin"

    mkdir -p "$RUNS_DIR"
    rm -f "$RUNS_DIR"/cmp-* "$BASELINE_REPORT.partial"
    local cpu candidate_sum baseline_sum same=""
    cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    candidate_sum="$(sha256sum "$RELAY_BIN" | cut -c1-12)"
    baseline_sum="$(sha256sum "$baseline_bin" | cut -c1-12)"
    if [[ "$candidate_sum" == "$baseline_sum" ]]; then
        same=": the two binaries are identical, so every difference below is noise"
    fi
    {
        echo "# streampump: candidate against baseline"
        echo
        echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), ${cpu:-unknown CPU}, $(nproc) cores," \
            "command: \`BENCH_BASELINE=$BENCH_BASELINE BENCH_ROUNDS=$BENCH_ROUNDS BENCH_SECONDS=$BENCH_SECONDS${RELAY_TARGET:+ RELAY_TARGET=$RELAY_TARGET} bench/run.sh\`"
        echo
        echo "Candidate: $candidate_commit, the working tree ($RELAY_BIN). Baseline: $baseline_commit" \
            "($baseline_bin). Both built with \`cargo build --release --locked\`; sha256" \
            "$candidate_sum… and $baseline_sum…$same."
        echo "$BENCH_ROUNDS round(s); in each, both binaries ran both loads, a fresh relay process per run" \
            "(candidate on port $RELAY_PORT, baseline on $BASELINE_PORT), the candidate first in odd rounds and the" \
            "baseline first in even ones; ${BENCH_SECONDS} s measured per run after 2 s of warm-up; loadgen shares the machine," \
            "whose load average was $(cut -d' ' -f1-3 /proc/loadavg) at the start."
        echo
        echo "Each cell is the median over rounds (min–max); for an even number of rounds the median is the" \
            "mean of the middle two. baseline / candidate divides the two medians: above 1 the candidate has the" \
            "lower figure. Per-round ratios divide the two runs of the same round. Latency is push start → last" \
            "byte of the part at a viewer. Thread counts are reported as measured, not judged."
        echo
    } | tee "$BASELINE_REPORT.partial"

    local round spec name title flags relay_flags side bin port base
    local order=() load=() extra=()
    for round in $(seq 1 "$BENCH_ROUNDS"); do
        if ((round % 2 == 1)); then order=(candidate baseline); else order=(baseline candidate); fi
        for spec in "${BASELINE_SCENARIOS[@]}"; do
            IFS='|' read -r name title flags relay_flags <<<"$spec"
            read -ra load <<<"$flags"
            read -ra extra <<<"$relay_flags"
            for side in "${order[@]}"; do
                if [[ "$side" == candidate ]]; then
                    bin="$RELAY_BIN" port="$RELAY_PORT"
                else
                    bin="$baseline_bin" port="$BASELINE_PORT"
                fi
                base="$RUNS_DIR/cmp-$name-$side-$round"
                start_server "$side" "$port" "$base.log" "$bin" --listen "127.0.0.1:$port" "${extra[@]}"
                if ! run_loadgen "$side-$round" "cmp-$name" "$port" "$SERVER_PID" "${load[@]}" ||
                    [[ "$(field "$base.json" server_lost)" == true ]]; then
                    # Left out of the medians; the run's output stays for a closer look.
                    FAILED_RUNS=$((FAILED_RUNS + 1))
                    mv -f "$base.json" "$base.json.failed" 2>/dev/null || true
                fi
                stop_server
            done
        done
    done

    {
        for spec in "${BASELINE_SCENARIOS[@]}"; do
            IFS='|' read -r name title flags relay_flags <<<"$spec"
            baseline_table "$name" "$title"
            if [[ -n "$relay_flags" ]]; then
                printf 'Both binaries ran with %s in this scenario.\n\n' "$relay_flags"
            fi
        done
        if ((FAILED_RUNS > 0)); then
            printf '%s run(s) failed and are left out above; see %s/cmp-*.txt.\n\n' "$FAILED_RUNS" "$RUNS_DIR"
        fi
        printf 'The whole command took %d min %02d s, builds included; load average at the end: %s.\n' \
            $((SECONDS / 60)) $((SECONDS % 60)) "$(cut -d' ' -f1-3 /proc/loadavg)"
    } | tee -a "$BASELINE_REPORT.partial"
    mv "$BASELINE_REPORT.partial" "$BASELINE_REPORT"
    say "written to $BASELINE_REPORT"
    ((FAILED_RUNS == 0)) || die "$FAILED_RUNS run(s) failed"
}

main() {
    [[ "$BENCH_SECONDS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_SECONDS must be a whole number of seconds, got '$BENCH_SECONDS'"
    if [[ "${BENCH_ONLY:-}" == auth ]]; then
        auth_only
        return
    fi
    if [[ -n "${BENCH_BASELINE:-}" ]]; then
        baseline_only
        return
    fi
    command -v go >/dev/null 2>&1 ||
        die "go not found: the reference server is built from source; install Debian's golang-go (apt-get install golang-go) or set PATH"
    [[ -f "$SEED_PUMP_DIR/main.go" ]] ||
        die "reference source not found: no main.go in SEED_PUMP_DIR=$SEED_PUMP_DIR (set SEED_PUMP_DIR to the seed-pump directory)"

    say "building streampump (release) and loadgen (bench-tool profile)"
    cargo build --release --quiet "${RELAY_BUILD[@]}" ||
        die "cannot build streampump${RELAY_TARGET:+ for $RELAY_TARGET (rustup target add $RELAY_TARGET)}"
    cargo build --profile bench-tool --example loadgen --quiet
    say "building the reference server from $SEED_PUMP_DIR"
    local root
    root="$(pwd)"
    (cd "$SEED_PUMP_DIR" && go build -o "$root/$REFERENCE_BIN" .) ||
        die "go build failed in SEED_PUMP_DIR=$SEED_PUMP_DIR (Debian's golang-go is enough)"

    mkdir -p "$RUNS_DIR"
    rm -f "$RUNS_DIR"/*.json "$RUNS_DIR"/*.txt "$RUNS_DIR"/*.log "$REPORT.partial"

    local cpu commit
    cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [[ -n "$(git status --porcelain -- src Cargo.toml 2>/dev/null)" ]]; then
        commit="$commit + uncommitted changes in src/"
    fi
    {
        echo "# streampump vs reference"
        echo
        echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), ${cpu:-unknown CPU}, $(nproc) cores," \
            "command: \`BENCH_SECONDS=$BENCH_SECONDS SEED_PUMP_DIR=$SEED_PUMP_DIR${RELAY_TARGET:+ RELAY_TARGET=$RELAY_TARGET} bench/run.sh\`"
        echo
        echo "streampump $commit ($RELAY_BIN); reference built with $(go version | awk '{ print $3 }');" \
            "${BENCH_SECONDS} s measured per run after 2 s of warm-up; loadgen shares the machine."
        echo "Latency is push start → last byte of the part at a viewer; ratios above 1 favour streampump."
        echo
    } | tee "$REPORT.partial"

    scenario 1x1 "1 device × 1 viewer, 20 fps, 60 KB frames" 1 1 20 61440 0 0
    scenario 4x4 "4 devices × 4 viewers, 20 fps, 60 KB frames" 4 4 20 61440 0 0
    scenario 10x10 "10 devices × 10 viewers, 15 fps, 60 KB frames" 10 10 15 61440 0 0
    # 100 viewers per device is over streampump's default --max-viewers (32): raised here so
    # both servers carry the same load.
    scenario 2x100 "2 devices × 100 viewers, 10 fps, 30 KB frames" 2 100 10 30720 0 0 \
        --max-viewers 100
    # The same load without the slow and stalled viewers, so the two can be compared directly.
    scenario 2x4 "2 devices × 4 viewers, 15 fps, 60 KB frames" 2 4 15 61440 0 0
    scenario slow "2 devices × 4 viewers + 2 slow + 2 stalled each, 15 fps, 60 KB frames" \
        2 4 15 61440 2 2
    auth_comparison

    mv "$REPORT.partial" "$REPORT"
    say "written to $REPORT"
    ((FAILED_RUNS == 0)) || die "$FAILED_RUNS scenario(s) had a failed run"
}

main "$@"
