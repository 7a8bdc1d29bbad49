# Sourced by scripts/start.sh and scripts/test.sh: the project's environment (.venv) and its settings.
# Path settings given relative to where the command was typed are made absolute here, before the scripts change directory.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
T0=$SECONDS

step() { printf '\n== [%dm%02ds] %s\n' $(((SECONDS - T0) / 60)) $(((SECONDS - T0) % 60)) "$*"; }
die() { echo "error: $*" >&2; exit 1; }

# The CORA_GNN_* settings that name files or folders, and the shared data mirror beside the clone when there is one.
for var in CORA_GNN_DATA_ROOT CORA_GNN_DATA_MIRROR CORA_GNN_RUNS CORA_GNN_LOG_DB CORA_GNN_DRIFT_DIR CORA_GNN_CHECKPOINT; do
  val="${!var:-}"
  case "$val" in ""|/*|*://*) ;; *) export "$var=$(realpath -m -- "$val")" ;; esac
done
if [ -z "${CORA_GNN_DATA_MIRROR:-}" ] && [ -d "$ROOT/../shared/data/planetoid" ]; then
  export CORA_GNN_DATA_MIRROR="$(cd "$ROOT/../shared/data/planetoid" && pwd)"
fi
export WANDB_MODE="${WANDB_MODE:-offline}"   # tracking never needs an account

# The library notebooks' executed copies, with their outputs: made by the notebook tests (scripts/test.sh), reused by the
# site build (scripts/site.sh) while notebooks_stamp, a hash of the library notebooks, is the one written beside them.
EXECUTED_NBS="build/nbs-executed"
notebooks_stamp() { cat "$ROOT"/nbs/[0-9]*.ipynb | sha256sum | cut -d' ' -f1; }

# venv [EXTRA]: create .venv if missing and install the project (editable, with EXTRA) when pyproject.toml has changed
# since the last install; then activate it. Needs Python 3.11+ as python3 (or $PYTHON).
venv() {
  local extra="${1:-}" stamp="$ROOT/.venv/.installed${1:+-$1}" want
  want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
  if [ ! -x "$ROOT/.venv/bin/python" ]; then
    "${PYTHON:-python3}" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
      || die "cora-gnn needs Python 3.11 or newer as python3 (or set PYTHON=/path/to/python3.11)"
    "${PYTHON:-python3}" -m venv "$ROOT/.venv"
  fi
  . "$ROOT/.venv/bin/activate"
  if [ -z "$extra" ] && [ "$(cat "$ROOT/.venv/.installed-dev" 2>/dev/null)" = "$want" ]; then stamp="$ROOT/.venv/.installed-dev"; fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "installing cora-gnn${extra:+[$extra]} into .venv (torch is pinned to its CPU build)"
    python -m pip install -q --upgrade pip
    python -m pip install -q -e "$ROOT${extra:+[$extra]}"  # with bytecode: where PYTHONDONTWRITEBYTECODE is set, imports never write it
    echo "$want" >"$stamp"
  else
    echo ".venv is up to date with pyproject.toml"
  fi
}
