# streampump — the front door. `make help` lists the targets.

CARGO ?= cargo
# Debian packages the tests drive as real clients.
TEST_TOOLS := ffmpeg ffprobe

.PHONY: help all build run test test-deps bench-deps lint fmt clippy shellcheck bench clean fuzz abuse soak

help:
	@echo "make build     release binary in target/release/streampump"
	@echo "make run       run the relay with default settings (port 19999)"
	@echo "make test      unit and integration tests (installs ffmpeg when run as root)"
	@echo "make lint      rustfmt, clippy and shellcheck"
	@echo "make bench     streampump vs the reference Go server under loadgen (BENCH_SECONDS=15)"
	@echo "make abuse     the full abuse suite against the release binary (report in target/abuse-report.md)"
	@echo "make soak      10 devices x 10 viewers x 15 fps for SOAK_SECONDS (default 600), RSS and threads every 10 s"
	@echo "make fuzz      every cargo-fuzz target in fuzz/ for FUZZ_SECONDS each (default 30; nightly)"

all: build

build:
	$(CARGO) build --release --locked

run:
	$(CARGO) run --release --locked

# The tests run the real binary against real clients; a missing tool is installed when
# possible, or named, never skipped.
test: test-deps
	$(CARGO) test --locked --all-targets

test-deps:
	@missing=""; for tool in $(TEST_TOOLS); do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing ffmpeg for the real-client tests (missing:$$missing)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null || exit 1; \
		else \
			echo "error: the tests need$$missing: install Debian's ffmpeg package (sudo apt-get install ffmpeg)" >&2; \
			exit 1; \
		fi; \
	fi

lint: fmt clippy shellcheck

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --locked --all-targets -- -D warnings

shellcheck:
	@command -v shellcheck >/dev/null 2>&1 || { echo "error: shellcheck not found: install Debian's shellcheck package" >&2; exit 1; }
	shellcheck bench/run.sh .ci/run

# streampump vs the reference Go server under loadgen; BENCH_SECONDS=8 for a shorter run.
bench: bench-deps
	bash bench/run.sh

# Every attack of the abuse suite at full scale, against the release binary, with normal
# viewers measured before, during and after each (a reduced version runs in `make test`).
abuse:
	ABUSE_SCALE=full $(CARGO) test --release --locked --test abuse -- --nocapture --test-threads=1

SOAK_SECONDS ?= 600

# A long run at 10 x 10 x 15 fps that records RSS, threads and descriptors every 10 s.
soak:
	ABUSE_SCALE=full SOAK_SECONDS=$(SOAK_SECONDS) $(CARGO) test --release --locked --test abuse soak -- --ignored --nocapture

# The reference server is built from source with Debian's Go.
bench-deps:
	@if ! command -v go >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing golang-go to build the reference server"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null || exit 1; \
		else \
			echo "error: make bench needs Go to build the reference server: install Debian's golang-go (sudo apt-get install golang-go)" >&2; \
			exit 1; \
		fi; \
	fi

clean:
	$(CARGO) clean

# Every fuzz target for FUZZ_SECONDS each; a crash stops the run and is saved in fuzz/artifacts/.
# New inputs go to fuzz/target/corpus/, so the committed seeds in fuzz/corpus/ change only when
# someone minimises on purpose (cargo +nightly fuzz cmin TARGET).
FUZZ_SECONDS ?= 30

fuzz:
	@$(CARGO) +nightly --version >/dev/null 2>&1 || { echo "error: make fuzz needs the nightly toolchain: rustup toolchain install nightly" >&2; exit 1; }
	@$(CARGO) fuzz --version >/dev/null 2>&1 || { echo "error: make fuzz needs cargo-fuzz: cargo install cargo-fuzz --locked" >&2; exit 1; }
	@targets=$$($(CARGO) +nightly fuzz list) || exit 1; \
	for target in $$targets; do \
		echo "fuzzing $$target for $(FUZZ_SECONDS) s"; \
		mkdir -p "fuzz/target/corpus/$$target" || exit 1; \
		$(CARGO) +nightly fuzz run "$$target" "fuzz/target/corpus/$$target" "fuzz/corpus/$$target" -- \
			-max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 || exit 1; \
	done
