# The two commands of the README. Both install what a fresh Debian machine with only the Swift toolchain lacks.
SWIFT ?= swift
DEBIAN_PACKAGES := libsqlite3-dev zlib1g-dev
BIN := .build/debug

.PHONY: all deps python build demo test bench reliability clean

all: build

# Installs the system libraries GRDB and CompressNIO link against, when missing.
deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build --build-tests

# Starts a hub and three simulated sites and runs the walkthrough.
demo: build
	BIN=$(BIN) ./scripts/demo.sh

# schemathesis runs from a Python virtual environment; Debian's python3 needs python3-venv for that.
python:
	@if ! python3 -m venv --help >/dev/null 2>&1; then \
		echo "installing python3-venv"; \
		if [ "$$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq python3 python3-venv; \
	fi

# Everything CI checks: one build, the demo with the real binaries, schemathesis against a live hub, then every test.
test: build python
	BIN=$(BIN) ./scripts/demo.sh > .build/demo.log 2>&1 || (cat .build/demo.log; exit 1)
	@echo "demo: the walkthrough passed with the real binaries"
	BIN=$(BIN) ./scripts/schemathesis.sh > .build/schemathesis.log 2>&1 || (tail -80 .build/schemathesis.log; exit 1)
	@echo "schemathesis: $$(grep -E 'generated' .build/schemathesis.log | tail -1 | sed 's/^ *//') against the hub's OpenAPI document"
	$(BIN)/cairn-bench run --clusters 50 --duration 10 --out .build/bench-smoke.json > .build/bench-smoke.log 2>&1 || (cat .build/bench-smoke.log; exit 1)
	@echo "bench smoke: $$(tail -1 .build/bench-smoke.log)"
	$(BIN)/cairn-bench reconnect --clusters 50 > .build/bench-reconnect.log 2>&1 || (cat .build/bench-reconnect.log; exit 1)
	@echo "bench reconnect smoke: $$(tail -1 .build/bench-reconnect.log)"
	$(SWIFT) test --skip-build
	@[ -n "$$CAIRN_TEST_KUBECONFIG" ] || echo "note: the Kubernetes integration suite was skipped; set CAIRN_TEST_KUBECONFIG to a kubeconfig to run it against a real API server"

# The figures of BENCHMARKS.md: release builds, then one run at CLUSTERS sites (10,000 by default). The agent is
# built as its image ships it (packaging/kubernetes/Containerfile: the Swift libraries linked in), in a build folder
# of its own; the hub is not, since NIO can run its tasks on the event loops only when linked against them.
CLUSTERS ?= 10000
bench: deps
	$(SWIFT) build -c release
	$(SWIFT) build -c release --static-swift-stdlib --product cairn-agent --scratch-path .build/static
	.build/release/cairn-bench run --clusters $(CLUSTERS) --duration 30 --timeout 300 --agent .build/static/release/cairn-agent --out .build/bench-results.json

# The fault suite with more injections; rewrites RELIABILITY.md from what the tests recorded.
reliability: build
	SWIFT=$(SWIFT) ./scripts/reliability.sh

clean:
	rm -rf .build
