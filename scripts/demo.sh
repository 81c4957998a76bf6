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

# --- The ETSI reference scenarios: say where, not which cluster.
holder() {
    for site in c1 c2 c3; do
        if "$BIN/cairn-agent" objects --state-dir "$STATE/$site" | grep -q ' frontend '; then echo "$site"; fi
    done
}

step "scenario 0: order the service with a placement of one cluster among platform=kubernetes"
"$BIN/cairnctl" apply -f "$ROOT/packaging/examples/etsi-service.yaml" | sed 's/^/    /'
"$BIN/cairnctl" workset status shop --watch --timeout 60s | tail -n 2 | sed 's/^/    /'
CHOSEN=$(holder)
[ "$(echo "$CHOSEN" | wc -w)" = 1 ] || fail "the service should run on exactly one cluster, not: $CHOSEN"
case "$CHOSEN" in c1|c2) ;; *) fail "the service landed on $CHOSEN, which is not platform=kubernetes" ;; esac
echo "    the service runs on $CHOSEN only ($("$BIN/cairnctl" placement get web | tail -n 1 | awk '{print $NF}') chosen by placement web)"

step "scenario 1: scaling the front end 2 → 3 through the WorkSet"
sed 's/replicas: 2/replicas: 3/' "$ROOT/packaging/examples/etsi-service.yaml" >"$STATE/etsi-3.yaml"
"$BIN/cairnctl" apply -f "$STATE/etsi-3.yaml" >/dev/null
"$BIN/cairnctl" workset status shop --watch --timeout 60s | tail -n 2 | sed 's/^/    /'
wait_for "3 ready front-end replicas on $CHOSEN" sh -c "'$BIN/cairn-agent' objects --state-dir '$STATE/$CHOSEN' | grep ' frontend ' | grep -q '3/3'"
[ "$(holder)" = "$CHOSEN" ] || fail "the front end appeared elsewhere"
echo "    $CHOSEN runs 3/3 front-end replicas; no other cluster runs it"

step "scenario 3: relocation — relabel $CHOSEN platform=openshift"
"$BIN/cairnctl" cluster label "$CHOSEN" platform=openshift >/dev/null
wait_for "the service to leave $CHOSEN" sh -c "! '$BIN/cairn-agent' objects --state-dir '$STATE/$CHOSEN' | grep -q ' frontend '"
NEW=$(holder)
echo "    the service moved from $CHOSEN to $NEW; the events, oldest first:"
"$BIN/cairnctl" events --for WorkSet/shop | tail -n +2 | tac | grep -E "Applied|Removed" | tail -n 2 | sed 's/^/      /'
"$BIN/cairnctl" cluster label "$CHOSEN" platform=kubernetes >/dev/null

step "scenario 2: security patch — new version and a NetworkPolicy, progressively to every cluster"
"$BIN/cairnctl" apply -f "$ROOT/packaging/examples/etsi-security-patch.yaml" | sed 's/^/    /'
"$BIN/cairnctl" workset status shop --watch --timeout 120s | sed 's/^/    /'
for site in c1 c2 c3; do
    "$BIN/cairn-agent" objects --state-dir "$STATE/$site" | grep -q NetworkPolicy || fail "no NetworkPolicy on $site"
done
echo "    every cluster runs the patched front end with its NetworkPolicy"

step "stopping everything"
