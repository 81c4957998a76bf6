# The two commands of the README. Both install what a fresh Debian machine with only the Swift toolchain lacks.
SWIFT ?= swift
DEBIAN_PACKAGES := libsqlite3-dev zlib1g-dev
BIN := .build/debug

.PHONY: all deps build demo test reliability clean

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

# Everything CI checks: one build, the demo with the real binaries, then every test.
test: build
	BIN=$(BIN) ./scripts/demo.sh > .build/demo.log 2>&1 || (cat .build/demo.log; exit 1)
	@echo "demo: the walkthrough passed with the real binaries"
	$(SWIFT) test --skip-build
	@[ -n "$$CAIRN_TEST_KUBECONFIG" ] || echo "note: the Kubernetes integration suite was skipped; set CAIRN_TEST_KUBECONFIG to a kubeconfig to run it against a real API server"

# The fault suite with more injections; rewrites RELIABILITY.md from what the tests recorded.
reliability: build
	SWIFT=$(SWIFT) ./scripts/reliability.sh

clean:
	rm -rf .build
