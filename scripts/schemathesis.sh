#!/bin/sh
# Runs schemathesis (PyPI) against a live hub with the hub's own OpenAPI document: generated and mutated
# requests to every described operation, a bounded number of examples each. Passes when no answer is a 5xx
# and every answer matches the document (errors in the documented shape).
set -eu
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/debug}
VENV=.build/schemathesis-venv
if [ ! -x "$VENV/bin/st" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "schemathesis==4.32.5"
fi
STATE=$(mktemp -d /tmp/cairn-schemathesis.XXXXXX)
"$BIN/cairn-hub" serve --state-dir "$STATE/hub" --listen 127.0.0.1:0 --log-level error > "$STATE/hub.log" 2>&1 &
HUB=$!
trap 'kill $HUB 2>/dev/null; wait $HUB 2>/dev/null; rm -rf "$STATE"' EXIT
for _ in $(seq 1 100); do
    URL=$(sed -n 's/^cairn-hub listening on //p' "$STATE/hub.log")
    [ -n "$URL" ] && break
    sleep 0.1
done
[ -n "$URL" ] || { cat "$STATE/hub.log"; echo "the hub did not start"; exit 1; }
"$VENV/bin/st" run docs/openapi.yaml --url "$URL/api/v1" \
    --header "Authorization: Bearer $(cat "$STATE/hub/admin-token")" --tls-verify "$STATE/hub/pki/ca.pem" \
    --checks not_a_server_error,response_schema_conformance,content_type_conformance \
    --max-examples "${CAIRN_SCHEMATHESIS_EXAMPLES:-25}" --seed 20261121 --workers 1 --no-shrink \
    --request-timeout 10 --warnings off
