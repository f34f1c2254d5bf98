#!/usr/bin/env bash
# Set up a fresh machine for Baton and run its demo or its tests.
#
#   ops/run.sh demo   local stack (PostgreSQL, one server per region) and the demo
#   ops/run.sh test   the whole test suite (starts its own PostgreSQL and Kafka)
#
# Installs what is missing: Debian's PostgreSQL 15 server, Java 17 and Maven
# (for the Kafka broker's jars), and a Python virtualenv with Baton in it.
set -euo pipefail

cmd="${1:-}"
shift || true
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

need=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing system packages: ${need[*]} (install them, or run as root)" >&2
        exit 1
    fi
    echo "installing ${need[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's postgresql package may start a cluster of its own; Baton runs its own.

py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,dev]'

case "$cmd" in
    demo)
        exec .venv/bin/baton demo "$@"
        ;;
    test)
        # Static checks first: they take seconds and name the line.
        .venv/bin/ruff check store worker ops tests replication versioning scheduler
        .venv/bin/mypy
        # Resolve the Kafka broker's jars once, before the timed tests.
        .venv/bin/python -m ops.kafka jars >/dev/null
        # Two test processes (pytest-xdist), a test module to each at a time:
        # most tests wait on timers, polls and other processes, so two share
        # the machine's cores well. Each starts its own PostgreSQL and Kafka.
        # BATON_TEST_PROCESSES=0 runs them in this process.
        exec .venv/bin/python -m pytest -n "${BATON_TEST_PROCESSES:-2}" --dist loadfile \
            --durations=25 "$@"
        ;;
    *)
        echo "usage: ops/run.sh demo|test [args]" >&2
        exit 2
        ;;
esac
