#!/usr/bin/env bash
# Make .venv/ with the project (editable) and its test tools, and provide Fashion-MNIST.
# Idempotent: run it again any time; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "setup: Python 3.10+ is needed (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $("$PYTHON" --version)"
    "$PYTHON" -m venv .venv
fi
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
# pip's output goes to a log that is shown only when an install fails.
pip_install() { .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" >"$LOG" 2>&1 || { cat "$LOG" >&2; exit 1; }; }

# torch first and pinned: on this project's machines these exact releases are served locally, and an
# unpinned resolve would pull a multi-gigabyte build from the index instead.
if ! .venv/bin/python -c 'import torch, torchvision' 2>/dev/null; then
    echo "setup: installing torch 2.14.1 and torchvision 0.29.1"
    pip_install torch==2.14.1 torchvision==0.29.1
fi
echo "setup: installing supernet (editable) with its test tools"
pip_install -e '.[dev]'

# Fashion-MNIST: the Debian package where apt works, else torchvision's download into the user cache.
FMNIST=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ ! -f "$FMNIST" ] && [ ! -f "$HOME/.cache/supernet/datasets/FashionMNIST/raw/train-images-idx3-ubyte" ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "setup: installing Fashion-MNIST (Debian package dataset-fashion-mnist)"
        apt-get update -qq >/dev/null && apt-get install -y -qq dataset-fashion-mnist >/dev/null || true
    fi
fi
if [ ! -f "$FMNIST" ]; then
    echo "setup: fetching Fashion-MNIST with torchvision into ~/.cache/supernet/datasets"
    .venv/bin/python -c "from supernet.data import load_dataset; load_dataset('fashion_mnist', None, 0, 0, download=True)" \
        || { echo "setup: Fashion-MNIST is not available: install the Debian package dataset-fashion-mnist," \
                  "or put the four IDX files in a folder and pass data.root=FOLDER to supernet train" >&2; exit 1; }
fi
echo "setup: done. Activate with: source .venv/bin/activate"
