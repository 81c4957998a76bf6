#!/bin/sh
# Runs the fault suite with more injections and writes RELIABILITY.md from what the tests themselves recorded.
set -eu
cd "$(dirname "$0")/.."
rows=.build/reliability
rm -rf "$rows"
CAIRN_RELIABILITY_DIR="$rows" CAIRN_FAULT_ROUNDS="${CAIRN_FAULT_ROUNDS:-30}" \
    ${SWIFT:-swift} test --skip-build --filter 'FaultTests|DeletionBrakeTests|OverloadTests' > .build/reliability.log 2>&1 \
    || { tail -40 .build/reliability.log; exit 1; }
{
    cat <<'HEAD'
# Reliability

What the fault suite injected and what survived. Every row below is written by the test that injected the
fault (`Tests/EndToEndTests/FaultTests.swift`, `DeletionBrakeTests.swift`, `OverloadTests.swift`), with real processes killed by
SIGKILL, real SQLite files and real sockets on 127.0.0.1. Regenerate with `make reliability`
(`CAIRN_FAULT_ROUNDS` sets how many kills; `make test` runs the same tests with fewer).

| Fault | Injected | Outcome | Lost |
|---|---|---|---|
HEAD
    cat "$rows"/*.md
    cat <<'TAIL'

## Not yet covered

- The instant between the site accepting a new object and the inventory recording its UID is covered by
  recording intent first (a unit test stops the agent exactly there); the kill -9 loop cannot aim at it.
- The full disk is SQLite refusing to grow (its page cap, which fails writes with the same SQLITE_FULL a
  full disk gives); a real filesystem filling up is not exercised.
- Memory while 1,000 agents reconnect at once (load shedding itself is covered) and the hub's API run
  through schemathesis from an OpenAPI document: issue 6's remaining work.
- Fuzzing is seeded mutation fuzzing in Swift Testing (`FuzzTests`, 1,500 inputs per decoder in `make
  test`, more with `CAIRN_FUZZ_ITERATIONS`); it found that YAML `.inf`/`1e309` became numbers JSON cannot
  hold (fixed). libFuzzer is not wired in.
TAIL
} > RELIABILITY.md
echo "RELIABILITY.md written from $(ls "$rows" | wc -l) recorded faults"
