# sdcontainer: `make demo` runs containers, `make test` runs the whole suite.
# Both install what they need (Debian packages and a venv in .venv).

PYTEST_ARGS ?= -q

.PHONY: deps demo test lint

deps:
	tools/install-deps

demo: deps
	tools/demo

# Every test runs inside the throwaway systemd box (tests/systemd-box): real
# systemd as PID 1, journald, D-Bus and a network namespace of its own.
test: deps
	tests/systemd-box -- bash -c 'cd "$(CURDIR)" && .venv/bin/pytest $(PYTEST_ARGS) tests'

lint: deps
	.venv/bin/ruff check sdcontainer tests
	.venv/bin/mypy
