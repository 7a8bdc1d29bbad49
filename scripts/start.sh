#!/usr/bin/env bash
# The main job in one command: create .venv if it is missing (no source builds), train the default model (GCN on Cora)
# into runs/gcn unless that run exists, promote it unless a run is promoted already, and serve the promoted run on
# http://127.0.0.1:8000 with the SQLite prediction log. Ctrl-C stops the service.
#
#   bash scripts/start.sh
#
# Settings: CORA_GNN_PORT (8000), CORA_GNN_RUNS (runs), CORA_GNN_DATA_MIRROR (where the Planetoid raw files are read
# from; default: the canonical Planetoid repository), and the other CORA_GNN_* variables of `cora-gnn serve --help`.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$ROOT"
PORT="${CORA_GNN_PORT:-8000}"
export CORA_GNN_RUNS="${CORA_GNN_RUNS:-$ROOT/runs}"
RUN="$CORA_GNN_RUNS/gcn"

step "environment: $ROOT/.venv"
venv
step "training run: $RUN"
if [ -f "$RUN/run.json" ] && [ -f "$RUN/checkpoint.pt" ]; then echo "reusing it (delete the folder to train again)"
else cora-gnn train --model gcn --dataset Cora --out "$RUN"; fi
if [ ! -f "$CORA_GNN_RUNS/promoted.json" ]; then cora-gnn promote gcn; fi   # runs.PROMOTED: a run promoted before stays served

step "service: http://127.0.0.1:$PORT"
cora-gnn serve --host 127.0.0.1 --port "$PORT" &
server=$!
trap 'kill -TERM "$server" 2>/dev/null; wait "$server"' INT TERM
ready() {   # waits for /ready and prints the run served (a function: a here-document inside $(...) makes bash warn)
python - "$PORT" "$server" <<'PY'
import json, os, sys, time, urllib.request
port, pid = sys.argv[1:]
for _ in range(600):
    try: urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2); break
    except OSError: time.sleep(0.2)
    try: os.kill(int(pid), 0)
    except OSError: sys.exit("error: the service stopped before it was ready (its log is above)")
else: sys.exit("error: the service was not ready after 2 minutes")
print(json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/info", timeout=5))["run_id"])  # the run it serves
PY
}
served=$(ready) || { wait "$server"; exit 1; }
cat <<MSG

cora-gnn is serving the run $served on http://127.0.0.1:$PORT  (Ctrl-C stops it)
  API docs:      http://127.0.0.1:$PORT/docs
  a paper of the graph (node 0):
    curl -s http://127.0.0.1:$PORT/api/v1/predict -H 'content-type: application/json' -d '{"index": 0}'
  a new paper (its word ids and the papers it cites):
    curl -s http://127.0.0.1:$PORT/api/v1/predict/paper -H 'content-type: application/json' -d '{"words": [19, 81, 507], "cites": [0, 8]}'
  the run:            $CORA_GNN_RUNS/$served (metrics.json, history.csv, checkpoint.pt, run.json)
  the prediction log: ${CORA_GNN_LOG_DB:-$CORA_GNN_RUNS/predictions.db} (SQLite, table predictions)
  metrics:            http://127.0.0.1:$PORT/metrics
MSG
wait "$server"
