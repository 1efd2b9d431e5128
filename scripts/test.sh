#!/usr/bin/env bash
# Run the whole test suite. Where Debian's pg_virtualenv is present, the run happens inside a
# throwaway PostgreSQL cluster (in a temporary directory, so runs never collide) and the PostgreSQL tests get its URL from
# TRIALCTL_TEST_DATABASE_URL; elsewhere they skip and say why.
# The tests run in parallel, one worker per core (TRIALCTL_TEST_WORKERS overrides, 0 = none),
# each test file kept on one worker so its module-scoped ledgers are built once, and files
# handed out in collection order, the slowest first (tests/conftest.py SLOWEST_FILES).
set -euo pipefail
cd "$(dirname "$0")/.."
pytest_bin=".venv/bin/pytest"
[ -x "$pytest_bin" ] || pytest_bin="pytest"
set -- -n "${TRIALCTL_TEST_WORKERS:-auto}" --dist loadfile --no-loadscope-reorder "$@"

if [ -n "${TRIALCTL_TEST_DATABASE_URL:-}" ]; then
  exec "$pytest_bin" "$@"
fi
if command -v pg_virtualenv >/dev/null 2>&1; then
  exec pg_virtualenv -t bash -c '
    export TRIALCTL_TEST_DATABASE_URL="postgresql+psycopg://${PGUSER}:${PGPASSWORD}@${PGHOST}:${PGPORT}/${PGDATABASE}"
    exec "$0" "$@"' "$pytest_bin" "$@"
fi
echo "pg_virtualenv not found: PostgreSQL tests will be skipped" >&2
exec "$pytest_bin" "$@"
