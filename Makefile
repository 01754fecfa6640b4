# sdcontainer: `make demo` runs containers, `make test` runs the whole suite.
# Both install what they need (Debian packages and a venv in .venv).

PYTEST_ARGS ?= -q

.PHONY: deps demo test test-unit test-packaging lint deb dist man bench native

deps:
	tools/install-deps

demo: deps
	tools/demo

# Every test runs inside the throwaway systemd box (tests/systemd-box): real
# systemd as PID 1, journald, D-Bus and a network namespace of its own.
# tests/shutdown-check powers a box off and checks containers got their stop signal;
# tests/reboot-check boots twice on one state directory (restart policies survive).
# tests/packaging installs the .deb into its own box: the packaged daemon must
# not meet the checkout's (tests/integration) in the same systemd.
test: deps
	tests/shutdown-check
	tests/reboot-check
	tests/systemd-box -- bash -c 'cd "$(CURDIR)" && .venv/bin/pytest $(PYTEST_ARGS) tests --ignore=tests/packaging'
	$(MAKE) test-packaging

# The native monitor alone (tools/install-deps builds it too): native/sdc-monitor.c.
native:
	native/build .venv/libexec/sdcontainer/sdc-monitor

# The unit tier: pure Python (the generator's golden files, restart and health rules,
# the HTTP parser, mount plans, filters), no root, no box, a few seconds.  No `deps`:
# it must run as a normal user, once .venv exists (`make deps` as root makes it).
# `make test` runs tests/unit as well, inside the box.
test-unit:
	@test -x .venv/bin/pytest || { echo "no .venv: run 'make deps' (as root) first" >&2; exit 1; }
	.venv/bin/pytest $(PYTEST_ARGS) -p no:cacheprovider tests/unit

test-packaging: deps
	tests/systemd-box -- bash -c 'cd "$(CURDIR)" && .venv/bin/pytest $(PYTEST_ARGS) tests/packaging'

lint: deps
	.venv/bin/ruff check sdcontainer tests
	.venv/bin/mypy

# Release files (packaging/build): the .deb alone, or the sdist, wheel and .deb
# with SHA256SUMS and MD5SUMS, all in dist/.  Man pages alone in build/man.
deb: deps
	packaging/build deb dist

dist: deps
	packaging/build dist dist

man: deps
	rm -rf build/man && packaging/install-data build/man-root && mv build/man-root/usr/share/man build/man && rm -rf build/man-root

# Benchmarks against podman (bench/, issue 9): results in bench/results/.
# BENCH_ARGS, e.g. --runs 10 --containers 100; see `python3 -m bench --help`.
bench: deps
	bench/run $(BENCH_ARGS)
