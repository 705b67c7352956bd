# streampump — the front door. `make help` lists the targets.

CARGO ?= cargo
# Debian packages the tests drive as real clients: ffmpeg, curl, zbarimg (reads the QR codes
# back), script (a terminal for the start-up QR code).
TEST_TOOLS := ffmpeg ffprobe curl zbarimg script
TEST_PACKAGES := ffmpeg curl zbar-tools bsdutils

# The parser of Prometheus's Python client, for the metrics test.
PROMETHEUS_CLIENT := 0.21.1

# Debian's Chromium, driven by playwright-core in `make e2e` (no browser is downloaded).
CHROMIUM ?= /usr/bin/chromium

# Cross builds: short name -> what `make NAME` builds (see scripts/build-target.sh).
CROSS_TARGETS := x86_64 aarch64 armv7 mipsel mips
# The nightly that builds std for MIPS and armv7; pinned because -Zbuild-std follows nightly.
NIGHTLY ?= nightly-2026-05-20
# BUILDER=auto|cross|native (auto: cross when docker or podman answers, else native).
BUILDER ?= auto
TOOLS_DIR ?= $(CURDIR)/.tools
export NIGHTLY BUILDER TOOLS_DIR
# How each binary is run here for `make smoke-NAME`.
RUNNER_x86_64 :=
RUNNER_aarch64 := qemu-aarch64
RUNNER_armv7 := qemu-arm
RUNNER_mipsel := qemu-mipsel
RUNNER_mips := qemu-mips
# Stripped size budget for the plain MIPS binaries (streampump, no HTTPS), in bytes. It was
# 408,000 before the memory budget and the JPEG walk, the QR codes with the start-up URLs, and
# managed phones (settings, health, events); what each costs is in docs/figures.md. Measured on
# 2026-12-04: 522,984 bytes (mipsel; mips 522,600), rounded up to 2,000 bytes plus about 1 %.
MIPS_BUDGET := 530000
# Stripped size budget for the MIPS binaries with HTTPS (streampump-tls), in bytes: rustls (ring,
# TLS 1.3 only) and rcgen. Measured on 2026-12-04: 1,123,252 bytes (mips; mipsel 1,122,724),
# rounded up to 2,000 bytes plus about 1 % (see docs/https.md).
MIPS_TLS_BUDGET := 1136000

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
DESTDIR ?=

.PHONY: help all build run test test-deps bench-deps bench-https lint fmt clippy shellcheck bench bench-baseline clean fuzz abuse abuse-tls flood-mipsel soak \
	tools cross size dist dist-pi dist-pi32 $(addprefix dist-,$(CROSS_TARGETS)) install uninstall init-checks openwrt-check systemd-check \
	e2e e2e-deps screenshots \
	$(CROSS_TARGETS) $(addprefix smoke-,$(CROSS_TARGETS)) smoke

help:
	@echo "make build     release binary in target/release/streampump"
	@echo "make run       run the relay with default settings (port 19999)"
	@echo "make test      unit and integration tests (installs ffmpeg when run as root, prometheus_client from PyPI)"
	@echo "make lint      rustfmt, clippy and shellcheck"
	@echo "make bench     streampump vs the reference Go server under loadgen (BENCH_SECONDS=15)"
	@echo "make bench-https  HTTPS against HTTP on one relay: 10 phones at 15 fps, 60 KB frames"
	@echo "make bench-baseline BENCH_BASELINE=COMMIT"
	@echo "               the working tree vs the relay built at COMMIT (e.g. HEAD~1), 10x10 and 2x100,"
	@echo "               BENCH_ROUNDS=3 alternating rounds, medians in bench-results/baseline.md; no Go"
	@echo "               (BENCH_BASELINE=COMMIT make bench does the same)"
	@echo "make abuse     the full abuse suite against the release binary (report in target/abuse-report.md),"
	@echo "               on the plain port and, for the attacks that hold connections, the HTTPS port"
	@echo "make abuse-tls only the attacks over HTTPS, at full scale"
	@echo "make flood-mipsel  the flood of new devices (abuse attack 15) against the mipsel build under qemu,"
	@echo "               with a 64 MB router's memory budget (FLOOD_SCALE=quick|full)"
	@echo "make soak      10 devices x 10 viewers x 15 fps for SOAK_SECONDS (default 600), RSS and threads every 10 s"
	@echo "make fuzz      every cargo-fuzz target in fuzz/ for FUZZ_SECONDS each (default 30; nightly)"
	@echo "make e2e       the push page and dashboard in Debian's Chromium with a fake camera, ffmpeg as viewer"
	@echo "make screenshots  make e2e, then copy its screenshots into docs/img for the README"
	@echo ""
	@echo "make tools     install the docker-free cross toolchain (rustup targets, $(NIGHTLY), zig, qemu-user)"
	@echo "make x86_64 | aarch64 | armv7 | mipsel | mips"
	@echo "               static musl binary in target/cross/NAME/streampump (BUILDER=auto|cross|native)"
	@echo "make cross     all five of them"
	@echo "make smoke-NAME  build NAME, run it under qemu-user, push a frame and read it back"
	@echo "make smoke     smoke-test all five"
	@echo "make size      table of stripped sizes per target (mips and mipsel must be <= $(MIPS_BUDGET) bytes,"
	@echo "               their streampump-tls <= $(MIPS_TLS_BUDGET) bytes)"
	@echo "make dist      target/dist/streampump-$(VERSION)-NAME.tar.gz for each target, plus SHA256SUMS"
	@echo "make dist-pi | dist-pi32 | dist-mipsel | dist-mips | dist-NAME"
	@echo "               one box's tarball (Pi with a 64-bit OS, 32-bit Pi OS, MT7621/MT76x8 routers, ath79)"
	@echo "make install   binary, systemd unit and defaults file (PREFIX=$(PREFIX), DESTDIR, BINDIR, SYSCONFDIR)"

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
			echo "installing $(TEST_PACKAGES) for the real-client tests (missing:$$missing)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_PACKAGES) >/dev/null || exit 1; \
		else \
			echo "error: the tests need$$missing: sudo apt-get install $(TEST_PACKAGES)" >&2; \
			exit 1; \
		fi; \
	fi
	@# tests/metrics.rs reads /metrics with prometheus_client's parser.
	@python3 -c 'import prometheus_client' 2>/dev/null || { \
		echo "installing prometheus_client $(PROMETHEUS_CLIENT) from PyPI for the metrics test"; \
		python3 -m pip install --quiet --disable-pip-version-check "prometheus_client==$(PROMETHEUS_CLIENT)" || \
		python3 -m pip install --quiet --disable-pip-version-check --user --break-system-packages "prometheus_client==$(PROMETHEUS_CLIENT)" || { \
			echo "error: the metrics test needs python3 with prometheus_client: python3 -m pip install prometheus_client" >&2; exit 1; }; }

lint: fmt clippy shellcheck init-checks

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --locked --all-targets -- -D warnings

shellcheck:
	@command -v shellcheck >/dev/null 2>&1 || { echo "error: shellcheck not found: install Debian's shellcheck package" >&2; exit 1; }
	shellcheck bench/run.sh bench/https.sh .ci/run scripts/*.sh openwrt/test/run.sh init/test/check-unit.sh
	shellcheck -x -P openwrt/test/stubs openwrt/streampump/files/streampump.init openwrt/test/stubs/rc.common openwrt/test/stubs/*.sh

# The OpenWrt init script run under busybox sh against stand-ins for procd and UCI, and the
# systemd unit through systemd-analyze.
init-checks: openwrt-check systemd-check

# The init script asks the relay itself (--check) whether its command line is valid.
openwrt-check:
	$(CARGO) build --locked
	STREAMPUMP_BIN=target/debug/streampump bash openwrt/test/run.sh

systemd-check:
	bash init/test/check-unit.sh

# streampump vs the reference Go server under loadgen; BENCH_SECONDS=8 for a shorter run.
# With BENCH_BASELINE=COMMIT, the working tree against the relay at COMMIT instead (no Go).
bench: bench-deps
	bash bench/run.sh

# HTTPS against HTTP on one relay, alternating rounds (bench/https.sh; no Go needed).
bench-https:
	bash bench/https.sh

# The working tree against the relay built at BENCH_BASELINE, in BENCH_ROUNDS alternating rounds.
bench-baseline:
	@test -n "$(BENCH_BASELINE)" || { echo "error: name the commit to compare with: make bench-baseline BENCH_BASELINE=HEAD~1" >&2; exit 1; }
	BENCH_BASELINE="$(BENCH_BASELINE)" bash bench/run.sh

# Every attack of the abuse suite at full scale, against the release binary, with normal
# viewers measured before, during and after each (a reduced version runs in `make test`).
# The attacks over HTTPS are ignored in the reduced run but one, so they are included here;
# the soak is not.
abuse:
	ABUSE_SCALE=full $(CARGO) test --release --locked --test abuse -- --include-ignored --skip soak --nocapture --test-threads=1

# Only the attacks over HTTPS (`--tls-listen`), at full scale.
abuse-tls:
	ABUSE_SCALE=full $(CARGO) test --release --locked --test abuse over_https -- --include-ignored --nocapture --test-threads=1

# FLOOD_SCALE=quick (4 s, CI) or full (20 s, 200 ids).
FLOOD_SCALE ?= quick

# The abuse suite's flood of new devices (attack 15) against the mipsel build under
# qemu-mipsel, with the memory budget a 64 MB router gets (8 MiB): the RSS measured is
# qemu's, which holds the relay's memory.
flood-mipsel: mipsel
	STREAMPUMP_TEST_BIN=$(CURDIR)/target/cross/mipsel/streampump STREAMPUMP_TEST_RUNNER=$(RUNNER_mipsel) \
		FLOOD_BUDGET_MIB=8 ABUSE_SCALE=$(FLOOD_SCALE) \
		$(CARGO) test --locked --test abuse attack_15 -- --nocapture

SOAK_SECONDS ?= 600

# A long run at 10 x 10 x 15 fps that records RSS, threads and descriptors every 10 s.
soak:
	ABUSE_SCALE=full SOAK_SECONDS=$(SOAK_SECONDS) $(CARGO) test --release --locked --test abuse soak -- --ignored --nocapture

# The web pages end to end: the release binary, Debian's Chromium with its fake camera (driven
# by playwright-core from npm), ffmpeg and ffprobe as viewers. Screenshots go to target/e2e/.
e2e: e2e-deps build
	cd e2e && npm ci --no-audit --no-fund --loglevel=error
	cd e2e && STREAMPUMP_BIN=$(CURDIR)/target/release/streampump CHROMIUM=$(CHROMIUM) npm test

e2e-deps:
	@missing=""; for tool in $(CHROMIUM) ffmpeg ffprobe curl zbarimg certutil; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing Debian's chromium, ffmpeg, curl, zbar-tools and libnss3-tools for the browser tests (missing:$$missing)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium ffmpeg curl zbar-tools libnss3-tools >/dev/null || exit 1; \
		else \
			echo "error: make e2e needs$$missing: sudo apt-get install chromium ffmpeg curl zbar-tools libnss3-tools" >&2; \
			exit 1; \
		fi; \
	fi
	@command -v npm >/dev/null 2>&1 || { echo "error: make e2e needs Node.js 18 or newer with npm (Debian: sudo apt-get install nodejs npm)" >&2; exit 1; }

screenshots: e2e
	install -m 0644 target/e2e/push.png target/e2e/dashboard.png target/e2e/dashboard-welcome.png docs/img/

# The reference server is built from source with Debian's Go (not needed with BENCH_BASELINE).
bench-deps:
	@if [ -z "$(BENCH_BASELINE)" ] && ! command -v go >/dev/null 2>&1; then \
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

tools:
	bash scripts/install-tools.sh

$(CROSS_TARGETS):
	bash scripts/build-target.sh $@

cross: $(CROSS_TARGETS)

# Every binary is smoke-tested with HTTPS where it has it: mips and mipsel build a plain
# streampump and a streampump-tls, the others one binary with TLS.
$(addprefix smoke-,$(CROSS_TARGETS)): smoke-%: %
	@if [ -f target/cross/$*/streampump-tls ]; then \
		python3 scripts/smoke.py target/cross/$*/streampump $(RUNNER_$*) && \
		python3 scripts/smoke.py --tls target/cross/$*/streampump-tls $(RUNNER_$*); \
	else \
		python3 scripts/smoke.py --tls target/cross/$*/streampump $(RUNNER_$*); \
	fi

smoke: $(addprefix smoke-,$(CROSS_TARGETS))

# Sizes of whatever is in target/cross; `make cross size` to rebuild everything first.
size:
	@bash scripts/size-table.sh $(MIPS_BUDGET) $(MIPS_TLS_BUDGET) $(CROSS_TARGETS)

# Every tarball, or one box's: `make dist-pi`, `make dist-mipsel` (any NAME of CROSS_TARGETS), or
# `make dist CROSS_TARGETS="aarch64 mipsel"`. The tools are checked before anything is built, so
# a fresh clone is told at once to run `make tools`.
dist:
	@bash scripts/build-target.sh --check $(CROSS_TARGETS)
	$(MAKE) cross CROSS_TARGETS="$(CROSS_TARGETS)"
	bash scripts/dist.sh $(VERSION) $(CROSS_TARGETS)

$(addprefix dist-,$(CROSS_TARGETS)): dist-%:
	$(MAKE) dist CROSS_TARGETS=$*

# The Raspberry Pi by its name: a 64-bit OS (arm64) takes aarch64, 32-bit Raspberry Pi OS armv7.
dist-pi:
	$(MAKE) dist CROSS_TARGETS=aarch64

dist-pi32:
	$(MAKE) dist CROSS_TARGETS=armv7

# Installs the host build made by `make build` (not rebuilt here, so that `sudo make install`
# needs no Rust toolchain for root); on a Raspberry Pi prefer a `make dist` binary (static).
install:
	@test -x target/release/streampump || { echo "error: no target/release/streampump: run make build first (as yourself, not root)" >&2; exit 1; }
	install -D -m 0755 target/release/streampump $(DESTDIR)$(BINDIR)/streampump
	install -d $(DESTDIR)$(SYSTEMD_UNIT_DIR)
	sed 's|/usr/local/bin/streampump|$(BINDIR)/streampump|' init/streampump.service \
		> $(DESTDIR)$(SYSTEMD_UNIT_DIR)/streampump.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/streampump.service
	@# An existing defaults file holds the user's settings: never overwrite it.
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/default/streampump ]; then \
		echo "keeping $(DESTDIR)$(SYSCONFDIR)/default/streampump"; \
	else \
		install -D -m 0644 init/streampump.default $(DESTDIR)$(SYSCONFDIR)/default/streampump; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/streampump $(DESTDIR)$(SYSTEMD_UNIT_DIR)/streampump.service
	@echo "left $(DESTDIR)$(SYSCONFDIR)/default/streampump in place (your settings)"

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
