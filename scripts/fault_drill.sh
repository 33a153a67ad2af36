#!/usr/bin/env bash
# The crash drill: SIGKILL a tiny training at 20 random points, resume it each time, and check that it
# ends with an uninterrupted run's weights and no temporary file (docs/faults.md). A few minutes on CPU.
#
#     bash scripts/fault_drill.sh [--kills 20] [--seed 0] [--work DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
# One heavy job at a time on a shared machine.
exec flock /tmp/supernet-bench.lock "$PYTHON" scripts/fault_drill.py "$@"
