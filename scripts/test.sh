#!/usr/bin/env bash
# The project's test command (README): notebooks clean and exported in sync, lint, notebook tests, pytest, coverage.
# Run from the repository root inside the project's environment (after `pip install -e ".[dev]"`).
set -euo pipefail
cd "$(dirname "$0")/.."
export WANDB_MODE="${WANDB_MODE:-disabled}"   # tracking never needs an account or the network in tests

echo "== notebooks clean and exported in sync"
nbdev-clean
nbdev-export
if [ -n "$(git status --porcelain -- nbs cora_gnn)" ]; then
  git status --short -- nbs cora_gnn
  git --no-pager diff --stat -- nbs cora_gnn
  echo "error: nbdev-clean/nbdev-export changed the files above: run them and commit the result" >&2
  exit 1
fi

echo "== ruff"
ruff check cora_gnn tests benchmarks

echo "== notebook tests (nbdev-test)"
coverage erase
coverage run --parallel-mode "$(command -v nbdev-test)" --n-workers 0 --timing

echo "== pytest"
coverage run --parallel-mode -m pytest

echo "== coverage of cora_gnn (notebook tests + pytest)"
coverage combine -q
coverage json -q -o build/coverage.json   # the Report page of the site reads it (scripts/site.sh)
coverage report --fail-under=90
