#!/usr/bin/env bash
# The generated clients: regenerated from the proto (a difference from the
# committed code fails), then each example run against a real server (the
# release binary, on a database of its own on 127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."
BUF=${BUF:-.ci/.tools/node_modules/.bin/buf}

# The generators, pinned: their versions are written into the output.
python3 -m pip install --quiet --disable-pip-version-check grpcio-tools==1.85.1
(cd clients/typescript && npm ci --no-audit --no-fund >/dev/null)

"$BUF" generate
"$BUF" generate --template clients/typescript/buf.gen.yaml
if [ -n "$(git status --porcelain -- clients)" ]; then
    git status --porcelain -- clients
    git diff --stat -- clients
    echo "the generated clients differ from the committed ones: run buf generate (see README)" >&2
    exit 1
fi
(cd clients/typescript && npx tsc --noEmit -p .)

VENV=$(mktemp -d)
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check clients/python

cargo build --locked --release --bin meetings
DB=meetings_clients_ci
psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
LOG=$(mktemp)
target/release/meetings serve --listen-addr 127.0.0.1:50061 --admin-addr '' \
    --database-url "postgres://postgres@127.0.0.1:5432/$DB" >"$LOG" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do
    grep -q "serving meetings" "$LOG" && break
    kill -0 $SERVER 2>/dev/null || { cat "$LOG"; echo "the server stopped" >&2; exit 1; }
    sleep 1
done
grep -q "serving meetings" "$LOG" || { cat "$LOG"; echo "the server did not start" >&2; exit 1; }

check() { # name, output: the example stored, streamed and printed violations
    local name=$1 out=$2
    printf '%s\n' "$out"
    grep -q "^stored " <<<"$out" || { echo "$name: nothing stored" >&2; exit 1; }
    grep -q "^AZ-JP: [1-9]" <<<"$out" || { echo "$name: no pair stream" >&2; exit 1; }
    grep -q "meeting.participants\[0\].country_code: " <<<"$out" || { echo "$name: no violations" >&2; exit 1; }
}
# Assignments, so that an example that fails stops the script (set -e).
out=$("$VENV/bin/python" clients/python/examples/example.py 127.0.0.1:50061)
check python "$out"
out=$(cd clients/typescript && npx tsx example/example.ts http://127.0.0.1:50061)
check typescript "$out"
