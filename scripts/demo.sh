#!/usr/bin/env bash
# The walkthrough from the README, run for real: a hub on embedded SQLite, three simulated sites, and a
# service applied, scaled and deleted. Every step prints one line. Needs the binaries in $BIN (make demo builds them).
set -euo pipefail

BIN=${BIN:-.build/debug}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=$(mktemp -d "${TMPDIR:-/tmp}/cairn-demo.XXXXXX")
PIDS=()

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "${KEEP:-0}" = 1 ]; then echo "state kept in $STATE"; else rm -rf "$STATE"; fi
}
trap cleanup EXIT

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
fail() { echo "demo failed: $*" >&2; for log in "$STATE"/*.log; do echo "--- $log" >&2; tail -n 20 "$log" >&2; done; exit 1; }

# Waits (bounded) until a command succeeds.
wait_for() {
    local what=$1; shift
    for _ in $(seq 1 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    fail "timed out waiting for $what"
}

step "starting cairn-hub on embedded SQLite in $STATE/hub (TLS on its port, its own CA)"
"$BIN/cairn-hub" serve --state-dir "$STATE/hub" --listen 127.0.0.1:0 --heartbeat-interval 2 >"$STATE/hub.log" 2>&1 &
PIDS+=($!)
wait_for "the hub to listen" grep -q "cairn-hub listening on" "$STATE/hub.log"
export CAIRN_HUB=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$STATE/hub.log" | head -n 1)
export CAIRN_TOKEN=$(cat "$STATE/hub/admin-token")
export CAIRN_CA_FILE="$STATE/hub/pki/ca.pem"
FINGERPRINT=$(sed -n 's/^CA fingerprint: //p' "$STATE/hub.log" | head -n 1)
echo "    hub at $CAIRN_HUB, CA $FINGERPRINT, admin token in $STATE/hub/admin-token"

step "creating enrolment tokens: one for manual approval, one auto-approving"
MANUAL=$("$BIN/cairnctl" token create --ttl 1h -o json | sed -n 's/.*"token" *: *"\([^"]*\)".*/\1/p')
AUTO=$("$BIN/cairnctl" token create --auto-approve --uses 1 --ttl 1h -o json | sed -n 's/.*"token" *: *"\([^"]*\)".*/\1/p')
[ -n "$MANUAL" ] && [ -n "$AUTO" ] || fail "no token in cairnctl's answer"
echo "    manual: ${MANUAL%%.*}.…  auto-approve: ${AUTO%%.*}.…"

step "starting three agents (simulated clusters), each pinning the hub CA: c1 (auto-approve token), c2 and c3 (manual)"
for site in c1 c2 c3; do
    token=$MANUAL; platform=kubernetes
    [ "$site" = c1 ] && token=$AUTO
    [ "$site" = c3 ] && platform=openshift
    "$BIN/cairn-agent" run --hub "$CAIRN_HUB" --token "$token" --ca-fingerprint "$FINGERPRINT" --name "$site" --state-dir "$STATE/$site" \
        --simulated-ready-delay 0.5 --simulated-platform "$platform" >"$STATE/$site.log" 2>&1 &
    PIDS+=($!)
done
wait_for "c2 and c3 to ask to join" sh -c "'$BIN/cairnctl' cluster list | grep -q '^c3 *Pending' && '$BIN/cairnctl' cluster list | grep -q '^c2 *Pending'"
echo "    c2 and c3 are pending; c1 was accepted by its token and speaks mTLS with its own certificate"

step "approving c2 and c3"
"$BIN/cairnctl" cluster approve c2 --wait --timeout 20s | sed 's/^/    /'
"$BIN/cairnctl" cluster approve c3 --wait --timeout 20s | sed 's/^/    /'
wait_for "c1 to join" sh -c "'$BIN/cairnctl' cluster get c1 | grep -q 'Accepted *True'"

step "labelling: c1, c2 platform=kubernetes; c3 platform=openshift"
"$BIN/cairnctl" cluster label c1 platform=kubernetes >/dev/null
"$BIN/cairnctl" cluster label c2 platform=kubernetes >/dev/null
"$BIN/cairnctl" cluster label c3 platform=openshift >/dev/null
"$BIN/cairnctl" cluster list | sed 's/^/    /'

step "applying the 3-component service (front end ×2 + Service, cache, database) to c1 and waiting for Available"
"$BIN/cairnctl" work apply -f "$ROOT/packaging/examples/shop-work.yaml" --cluster c1 --wait Available --timeout 30s | sed 's/^/    /'
"$BIN/cairn-agent" objects --state-dir "$STATE/c1" | sed 's/^/    c1: /'
[ -z "$("$BIN/cairn-agent" objects --state-dir "$STATE/c2" | tail -n +2)" ] || fail "objects appeared on c2"
echo "    c2 and c3 hold nothing"

step "scaling the front end 2 → 3"
sed 's/replicas: 2/replicas: 3/' "$ROOT/packaging/examples/shop-work.yaml" >"$STATE/shop-3.yaml"
"$BIN/cairnctl" work apply -f "$STATE/shop-3.yaml" --cluster c1 --wait Available --timeout 30s | sed 's/^/    /'
wait_for "readyReplicas 3 at the hub" sh -c "'$BIN/cairnctl' work get shop --cluster c1 -o json | tr -d ' \n' | grep -q '\"integer\":3,\"string\":null,\"type\":\"Integer\"},\"name\":\"ReadyReplicas\"\|\"integer\":3,\"type\":\"Integer\"},\"name\":\"ReadyReplicas\"'"
echo "    the hub shows readyReplicas 3 reported back from c1"
"$BIN/cairn-agent" objects --state-dir "$STATE/c1" | grep frontend | sed 's/^/    c1: /'

step "what the site itself knows (works offline)"
"$BIN/cairn-agent" status --state-dir "$STATE/c1" | sed 's/^/    /'

step "deleting the work"
"$BIN/cairnctl" work delete shop --cluster c1 --wait --timeout 30s | sed 's/^/    /'
[ -z "$("$BIN/cairn-agent" objects --state-dir "$STATE/c1" | tail -n +2)" ] || fail "objects left on c1"
echo "    c1 holds no objects"

step "stopping everything"
