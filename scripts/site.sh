#!/usr/bin/env bash
# Build the report site. Runs the pipeline notebooks and the benchmarks into nbs/results/ (a build folder, never
# committed), executes the Service and Report pages from those results, processes every notebook for Quarto
# (nbdev-proc-nbs, into _proc/) and renders the site into _docs/ (scripts/render.sh) where quarto is on PATH. The library
# notebooks' pages show their outputs from executed copies (build/nbs/): the notebook tests' (scripts/test.sh leaves
# them in build/nbs-executed) while the notebooks are unchanged since, else executed here; the notebooks in nbs/ stay
# without outputs. The render fails on any Quarto warning (a broken link, say).
#
#   bash scripts/site.sh               # full sizes: 10-seed Planetoid table (without GCNII: 3.2 core-hours, see Measurements) and benchmarks, 30-trial sweep
#   SITE_QUICK=1 bash scripts/site.sh  # small sizes (CI): the same pages, smoke-test numbers
#
# Run `bash scripts/test.sh` first to put the coverage figure on the Report page.
set -euo pipefail
export WANDB_MODE="${WANDB_MODE:-disabled}"
. "$(dirname "$0")/env.sh"
cd "$ROOT"
R=nbs/results
rm -rf "$R" && mkdir -p "$R" && touch "$R/.notest"   # executed copies: nbdev-test leaves them alone

if [ -n "${SITE_QUICK:-}" ]; then
  QUICK=True SMOKE=True SEEDS=2 EPOCHS=5 TABLE_MODELS="[]" SPEED_MODELS="gcn" SPEED_EPOCHS=20 TRIALS=3 SWEEP_EPOCHS=50 EVAL_SEEDS=2 REQUESTS=150 ROBUST=60 SEVERITIES="[0.0, 1.0]" DURATION=1 SIZES="[5000, 20000]"
else
  QUICK=False SMOKE=False SEEDS=10 EPOCHS=0 TABLE_MODELS="[gcn, gat, sage, appnp, sgc, grand]" SPEED_MODELS="gcn gat appnp" SPEED_EPOCHS=200 TRIALS=30 SWEEP_EPOCHS="" EVAL_SEEDS=10 REQUESTS=500 ROBUST=500 SEVERITIES="[0.0, 0.25, 0.5, 0.75, 1.0]" DURATION=5 SIZES="[10000, 100000, 300000, 1000000]"
fi
pm() { papermill --cwd . -k python3 --progress-bar "$@"; }

echo "== pipelines (papermill) -> $R"
pm nbs/pipelines/train.ipynb "$R/train.ipynb" -p model gcn -r out "$R/train"   # tracked offline (the default): $R/train/wandb
pm nbs/pipelines/sweep.ipynb "$R/sweep.ipynb" -p model gcn -p n_trials "$TRIALS" -p eval_seeds "$EVAL_SEEDS" -r out "$R/sweep" -p smoke "$SMOKE" \
   ${SWEEP_EPOCHS:+-p epochs "$SWEEP_EPOCHS"}   # full size: the model's own epochs
pm nbs/pipelines/drift.ipynb "$R/drift.ipynb" -r checkpoint "$R/train/checkpoint.pt" -p n_requests "$REQUESTS" \
   -p robust_n "$ROBUST" -y "severities: $SEVERITIES" -r drift_dir "$R/drift" -p smoke "$SMOKE"
pm nbs/pipelines/planetoid.ipynb "$R/planetoid.ipynb" -y "{datasets: [Cora, CiteSeer], models: $TABLE_MODELS}" \
   -p seeds "$SEEDS" -p epochs "$EPOCHS" \
   -r out "$R/planetoid" -p smoke "$SMOKE"
pm nbs/pipelines/scaling.ipynb "$R/scaling.ipynb" -y "sizes: $SIZES" -r out "$R/scaling" -p smoke "$SMOKE" -p progress False

echo "== benchmarks -> $R"
python benchmarks/speed.py --seeds "$SEEDS" --epochs "$SPEED_EPOCHS" --models $SPEED_MODELS --json "$R/speed.json"
if command -v wrk >/dev/null; then python benchmarks/serve_load.py --duration "$DURATION" --json "$R/serve_load.json"
else echo "wrk is not on PATH: no service load numbers in this build (apt-get install wrk)"; fi
if [ -f build/coverage.json ]; then cp build/coverage.json "$R/coverage.json"; fi

python -c "import json, sys, time; json.dump(dict(quick=sys.argv[1] == 'True', built=time.strftime('%Y-%m-%d')), open(sys.argv[2], 'w'))" "$QUICK" "$R/build.json"

echo "== pages"
pm nbs/_pages/service.ipynb "$R/service.ipynb" -r checkpoint "$R/train/checkpoint.pt" -r work_dir "$R/service"
pm nbs/_pages/report.ipynb "$R/report.ipynb" -r results_dir "$R" -p quick "$QUICK"

rm -rf build/nbs && mkdir -p build && cp -r nbs build/nbs
if [ "$(cat "$EXECUTED_NBS/.stamp" 2>/dev/null)" = "$(notebooks_stamp)" ]; then
  echo "== library notebooks: the notebook tests' executed copies ($EXECUTED_NBS) -> build/nbs"
  cp "$EXECUTED_NBS"/[0-9]*.ipynb build/nbs/
else
  echo "== library notebooks, executed -> build/nbs"
  nbdev-test build/nbs --file-glob '[0-9]*.ipynb' --save
fi

echo "== nbdev-proc-nbs -> _proc"
nbdev-proc-nbs --path build/nbs
if command -v quarto >/dev/null; then
  echo "== render (scripts/render.sh) -> _docs"
  bash scripts/render.sh
else
  echo "quarto is not on PATH: skipping the render. Everything up to it is in _proc/; install Quarto (quarto.org) and rerun, or let the GitHub 'site' workflow build it."
fi
