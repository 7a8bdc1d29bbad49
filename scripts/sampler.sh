#!/usr/bin/env bash
# PyG's compiled neighbour sampler, an optional speed-up of mini-batch training (cora_gnn samples on PyTorch alone without
# it; benchmarks/sampler.py compares the two): the `sampler` extra of pyproject.toml (torch-scatter, torch-sparse).
# They publish no wheels for this torch on PyPI, so pip builds them against the torch of the active environment, which
# needs a C++ compiler (Debian: apt-get install g++). The two packages build at the same time, torch-sparse's files in
# parallel with ninja (MAX_JOBS, default: every core), so the build takes the machine's cores instead of one.
#
#   . .venv/bin/activate && bash scripts/sampler.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if python -c 'import torch_scatter, torch_sparse' 2>/dev/null; then echo "sampler: already installed"; exit 0; fi
python -c 'import torch' 2>/dev/null || { echo "error: no torch in $(command -v python): activate the project's environment first" >&2; exit 1; }
command -v g++ >/dev/null || { echo "error: building the sampler needs a C++ compiler: apt-get install g++" >&2; exit 1; }

mapfile -t reqs < <(python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["sampler"], sep="\n")')
python -m pip install -q ninja wheel "setuptools>=70"
export PATH="$(dirname "$(python -c 'import sys; print(sys.executable)')"):$PATH"   # torch finds ninja on PATH
export MAX_JOBS="${MAX_JOBS:-$(nproc)}"
export CFLAGS="${CFLAGS:+$CFLAGS }-g0"   # no debug symbols: Python's own CFLAGS ask for -g, which costs a quarter of the compile time
build="$(mktemp -d)"; trap 'rm -rf "$build"' EXIT
echo "sampler: building ${reqs[*]} against torch $(python -c 'import torch; print(torch.__version__)') with $MAX_JOBS jobs (minutes)"
start=$SECONDS; pids=()
for req in "${reqs[@]}"; do
  python -m pip wheel -q --no-deps --no-build-isolation -w "$build" "$req" >"$build/${req%%=*}.log" 2>&1 & pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || { tail -n 40 "$build"/*.log >&2; echo "error: the sampler build failed (log above)" >&2; exit 1; }; done
python -m pip install -q --no-deps "$build"/*.whl
echo "sampler: installed in $((SECONDS - start)) s"
