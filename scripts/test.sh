#!/usr/bin/env bash
# Runs every test of the project.
#
# 1. The whole workspace on the embedded defaults (SQLite, local files, in-memory counters):
#    needs nothing but cargo.
# 2. When the services answer, the suites that talk to them again, against the real thing:
#    PostgreSQL at 127.0.0.1:5432 (database `test`, trust auth), Redis at 127.0.0.1:6379, and an
#    S3-compatible server (moto, installed into .venv-ci from PyPI and started here).
#    Set VISION_SKIP_SERVICES=1 to run step 1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

# The console's browser tests need chromium + chromedriver; here a missing browser fails them.
bash scripts/install-browser.sh
export VISION_REQUIRE_BROWSER=1

echo "== node --test (the web console's modules)"
node --test crates/server/console-tests/

echo "== cargo test --workspace (SQLite, filesystem, memory)"
cargo test --workspace --locked

# Schema fuzzing (scripts/fuzz-api.sh): Schemathesis against a running `vision serve`, a few
# minutes. Needs python3 (for the venv); VISION_SKIP_FUZZ=1 skips it.
if [ "${VISION_SKIP_FUZZ:-0}" != 1 ] && command -v python3 >/dev/null; then
    echo "== schema fuzzing (scripts/fuzz-api.sh)"
    FUZZ_NO_BUILD=1 bash scripts/fuzz-api.sh
fi

if [ "${VISION_SKIP_SERVICES:-0}" = 1 ]; then
    exit 0
fi

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

services=()
if answers 5432; then
    export VISION_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/test"
    # Earlier runs leave their per-test databases behind; drop them.
    if command -v psql >/dev/null; then
        psql -h 127.0.0.1 -U postgres -d test -Atc \
            "SELECT datname FROM pg_database WHERE datname LIKE 'vision_test_%'" 2>/dev/null |
            while read -r db; do psql -h 127.0.0.1 -U postgres -d test -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true; done
    fi
    services+=(postgres)
fi
if answers 6379; then
    export VISION_TEST_REDIS_URL="redis://127.0.0.1:6379"
    services+=(redis)
fi

moto_pid=""
if command -v python3 >/dev/null; then
    if [ ! -x .venv-ci/bin/moto_server ]; then
        python3 -m venv .venv-ci && .venv-ci/bin/pip install --quiet 'moto[server]==5.2.5' || true
    fi
    if [ -x .venv-ci/bin/moto_server ]; then
        port=$((20000 + RANDOM % 20000))
        .venv-ci/bin/moto_server -H 127.0.0.1 -p "$port" >/tmp/vision-moto.log 2>&1 &
        moto_pid=$!
        for _ in $(seq 50); do answers "$port" && break; sleep 0.2; done
        export VISION_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
        services+=(s3)
    fi
fi
trap '[ -n "$moto_pid" ] && kill "$moto_pid" 2>/dev/null || true' EXIT

if [ ${#services[@]} -eq 0 ]; then
    echo "== no services answer: PostgreSQL/Redis/S3 suites skipped"
    exit 0
fi
echo "== again against real services: ${services[*]}"
# The same build as above (identical features, nothing recompiles); the suites that talk to the
# database, counters or object store now use them. Crates that never touch a service (the models,
# dataset readers, intent parser, domain and API types) ran above already and are not repeated.
cargo test --workspace --locked --exclude ml --exclude datasets --exclude intent \
    --exclude domain --exclude api-types
