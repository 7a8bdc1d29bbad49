#!/usr/bin/env bash
# The project's test command, run from anywhere:  bash scripts/test.sh
# Installs what the suite needs where it is missing: .venv with the dev extra (no source builds: mini-batches sample
# neighbours with cora_gnn's own sampler on PyTorch), the load generators wrk and hey (Debian: apt-get install wrk hey;
# installed here when run as root), PostgreSQL's server (Debian: postgresql), Prometheus and promtool (Debian: prometheus).
# Then: notebooks clean and exported in sync, lint, notebook tests, pytest, coverage.
# .ci/run calls it on a fresh machine.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$ROOT"
export WANDB_MODE=disabled   # tracking never needs an account or the network in tests
mkdir -p build
export COVERAGE_FILE="$ROOT/build/.coverage"   # coverage's data files, the subprocesses' too, go to build/, never the root

if [ "${1:-}" = "--quick" ]; then   # between edits: the tests that start no process, in this environment, without installs
  [ -x .venv/bin/python ] || die "no .venv yet: run bash scripts/test.sh once"
  . .venv/bin/activate
  step "quick tier: pytest --quick (the tests that start no server, subprocess or papermill run)"
  exec python -m pytest --quick -q
fi

step "the container image's install steps, in the background (scripts/image.py -> build/image; tests/test_container.py)"
"${PYTHON:-python3}" scripts/image.py build/image >/dev/null 2>&1 &   # pip installs on one core: the other is free meanwhile

step "environment: $ROOT/.venv (with the dev extra)"
venv dev
step "load generators for the service benchmark: wrk, hey"
if ! command -v wrk >/dev/null || ! command -v hey >/dev/null; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo"
  else die "tests/test_benchmarks.py loads the service with wrk and hey: apt-get install wrk hey (as root), then rerun"; fi
  $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk hey >/dev/null
fi
echo "wrk: $(command -v wrk); hey: $(command -v hey)"
step "PostgreSQL server for the shared prediction log's tests (tests/test_postgres.py starts and stops its own)"
if ! python scripts/tmp_postgres.py --check 2>/dev/null; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo"
  else die "tests/test_postgres.py needs PostgreSQL's server: apt-get install postgresql (as root), then rerun"; fi
  $sudo apt-get update -qq && $sudo apt-get install -y -qq postgresql >/dev/null
fi
step "Prometheus server and promtool for the alerting rules' tests (tests/test_alerts.py starts and stops its own server)"
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo"
  else die "tests/test_alerts.py needs Prometheus and promtool: apt-get install prometheus (as root), then rerun"; fi
  $sudo apt-get update -qq && $sudo apt-get install -y -qq prometheus >/dev/null
fi
echo "prometheus: $(command -v prometheus); promtool: $(command -v promtool)"
if [ -z "${CORA_GNN_DATA_MIRROR:-}" ]; then   # the tests read a local mirror: fetch (and verify) it once
  python -c 'from cora_gnn.data import fetch_raw; [fetch_raw(n, root="data/mirror") for n in ("Cora", "CiteSeer")]'
  export CORA_GNN_DATA_MIRROR="$ROOT/data/mirror"
fi
echo "data mirror: $CORA_GNN_DATA_MIRROR"

step "notebooks clean and exported in sync"
nbdev-clean
nbdev-export
if [ -n "$(git status --porcelain -- nbs cora_gnn)" ]; then
  git status --short -- nbs cora_gnn
  git --no-pager diff --stat -- nbs cora_gnn
  echo "error: nbdev-clean/nbdev-export changed the files above: run them and commit the result" >&2
  exit 1
fi

step "ruff"
ruff check cora_gnn tests benchmarks scripts

step "notebook tests (nbdev-test): the library notebooks executed in $EXECUTED_NBS, their outputs kept for the site"
coverage erase
rm -rf "$EXECUTED_NBS" && mkdir -p build && cp -r nbs "$EXECUTED_NBS" && rm -rf "$EXECUTED_NBS/results"
export OMP_NUM_THREADS=1   # from here on, two processes at work: one torch thread each (two each ran 3-5x slower: Measurements)
coverage run --parallel-mode "$(command -v nbdev-test)" "$EXECUTED_NBS" --file-glob '[0-9]*.ipynb' --save --n-workers 2 --timing
notebooks_stamp >"$EXECUTED_NBS/.stamp"
coverage run --parallel-mode "$(command -v nbdev-test)" --skip-file-glob '[0-9]*.ipynb' --n-workers 0   # the home page

step "pytest: two workers, a test file to each at a time (pytest-xdist), then the tests marked alone"
status=0   # --durations: the slowest tests, listed (where the time goes)
coverage run --parallel-mode -m pytest -n 2 --dist loadfile --no-loadscope-reorder -m "not alone" --durations=40 || status=$?
coverage run --parallel-mode -m pytest -m alone --durations=5 || status=$?

step "coverage of cora_gnn (notebook tests + pytest$([ "$status" = 0 ] || echo ', so far'))"
coverage combine -q
coverage json -q -o build/coverage.json   # the Report page of the site reads it (scripts/site.sh)
coverage report --fail-under=90 || { [ "$status" != 0 ] || status=1; }
if [ "$status" != 0 ]; then echo "error: the suite failed (exit $status): the failures are listed above pytest's summary" >&2; exit "$status"; fi
step "passed"
