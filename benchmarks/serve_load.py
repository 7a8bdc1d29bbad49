"""Load benchmark of the prediction service: throughput and p50/p99 latency of both predict endpoints at a few
concurrency levels, next to a bare FastAPI endpoint that returns a constant, served the same way in the same run.

    python benchmarks/serve_load.py                                  # trains a GCN first if no --checkpoint
    python benchmarks/serve_load.py --checkpoint runs/gcn/checkpoint.pt --duration 10 --concurrency 1 8 32
    python benchmarks/serve_load.py --baseline /tmp/cora-gnn-old     # also serve another checkout's code, measured in turn

With --baseline (a checkout of another commit: `git worktree add /tmp/cora-gnn-old <commit>`), the same checkpoint is
also served by that checkout's cora_gnn, in the same run, and each row measures the bare app, the baseline and this
checkout one after the other, so that a before/after comparison shares the machine's state.

Load comes from `wrk` (a compiled HTTP load generator: `apt-get install wrk`), one thread, closed loop: each of the
`concurrency` connections sends its next request when the last one is answered. Every run is bounded by --duration.
Prints a Markdown table. With `hey` on PATH (`apt-get install hey`) it also measures latency at a fixed request rate
(--node-rate, --paper-rate), the load a service sees in use rather than at saturation. hey's workers are throttled
by tickers that fire together, so several workers arrive in bursts; one worker (a request every 1/rate seconds) is
the steady stream (one worker per 500 req/s, so that each keeps pace), and the table shows the rate achieved.
"""
import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from harness import Server, free_port, serve  # noqa: E402
from cora_gnn.files import write_json


def bare_app():
    from fastapi import FastAPI
    app = FastAPI()
    const = {"predictions": [{"index": 0, "class_id": 0, "class_name": "x", "confidence": 1.0, "probabilities": [1.0]}]}

    @app.post("/api/v1/predict")
    @app.post("/api/v1/predict/paper")
    async def constant(): return const

    @app.get("/health")
    async def health(): return {"status": "ok"}
    return app


LUA = """
local bodies = {%s}
request = function()
  return wrk.format("POST", "%s", {["Content-Type"] = "application/json"}, bodies[math.random(#bodies)])
end
"""


def wrk(url, path, bodies, concurrency, duration, tmp):
    script = Path(tmp) / f"{abs(hash((path, concurrency)))}.lua"
    script.write_text(LUA % (", ".join(json.dumps(json.dumps(b)) for b in bodies), path))
    out = subprocess.run(["wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    def ms(pct):
        v, unit = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(v) * {"us": 1e-3, "ms": 1, "s": 1e3}[unit]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: (.*)", out)
    return dict(rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), p50=ms(50), p99=ms(99),
                errors=(int(bad.group(1)) if bad else 0) + (1 if errs else 0))


def drain(url, body, fast=0.25):
    "Wait until the service has worked off what the last wrk row left queued: one request answered within `fast` s."
    for _ in range(200):
        t = time.perf_counter()
        httpx.post(url, json=body, timeout=120).raise_for_status()
        if time.perf_counter() - t < fast: return
    sys.exit(f"{url} stayed slower than {fast} s per request after 200 tries")


def hey(url, body, rate, duration, tmp):
    "Latency at a fixed total `rate`: hey workers (one per 500 req/s) each throttled to its share of the rate."
    workers = max(1, rate // 500)
    f = Path(tmp) / "hey-body.json"
    f.write_text(json.dumps(body))
    t0 = time.perf_counter()
    out = subprocess.run(["hey", "-z", f"{duration}s", "-c", str(workers), "-q", str(rate / workers), "-m", "POST", "-o", "csv",
                          "-T", "application/json", "-D", str(f), url], capture_output=True, text=True, timeout=duration + 60).stdout
    wall = time.perf_counter() - t0
    # one line per response: percentiles computed here (hey's own table is empty when it got few responses)
    rows = [line.split(",") for line in out.splitlines()[1:] if line.count(",") == 7]
    if not rows: sys.exit(f"hey got no response from {url} in {duration} s:\n{out[-2000:]}")
    ms = np.array([float(r[0]) for r in rows]) * 1e3
    return dict(rps=len(rows) / wall, p50=float(np.percentile(ms, 50)), p99=float(np.percentile(ms, 99)),
                errors=sum(r[6] != "200" for r in rows))


def workload(checkpoint, tmp):
    "The checkpoint to serve (`checkpoint`, else a GCN trained into `tmp`), 200 node requests and 50 new-paper requests."
    from cora_gnn.data import load_dataset
    from cora_gnn.hparams import TrainConfig
    from cora_gnn.predict import Predictor
    from cora_gnn.scores import record_run
    from cora_gnn.train import fit
    data = load_dataset("Cora")
    if checkpoint: ckpt = checkpoint
    else: ckpt = record_run(fit(TrainConfig("gcn", seed=0), data, progress=False), data, Path(tmp) / "gcn", "benchmark") / "checkpoint.pt"
    rng = random.Random(0)
    nodes = [{"index": rng.randrange(data.num_nodes)} for _ in range(200)]
    papers = [{"words": w, "cites": c} for w, c in zip(*Predictor.from_checkpoint(ckpt, data).graph_inputs(
                                                                    [rng.randrange(data.num_nodes) for _ in range(50)]))]
    return ckpt, nodes, papers


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="checkpoint to serve (default: train a GCN with its defaults)")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--workers", type=int, default=1, help="service worker processes (the bare app always runs one)")
    p.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    p.add_argument("--node-rate", type=int, default=1000, help="requests per second for the fixed-rate node row (needs hey)")
    p.add_argument("--paper-rate", type=int, default=200, help="requests per second for the fixed-rate paper row (needs hey)")
    p.add_argument("--json", help="also write the table to this JSON file (the report site reads it)")
    p.add_argument("--baseline", help="a checkout of another commit whose cora_gnn is served and measured beside this one")
    p.add_argument("--bare", type=int, help=argparse.SUPPRESS)  # internal: serve the bare app on this port
    args = p.parse_args(argv)
    if args.bare:
        import uvicorn
        return uvicorn.run(bare_app(), host="127.0.0.1", port=args.bare, log_level="warning")
    if not shutil.which("wrk"): sys.exit("this benchmark needs wrk on PATH (Debian/Ubuntu: apt-get install wrk)")

    tmp = tempfile.mkdtemp(prefix="cora-gnn-load-")
    ckpt, nodes, papers = workload(args.checkpoint, tmp)

    servers = []
    try:
        servers.append(serve("--checkpoint", ckpt, "--log-db", Path(tmp) / "log.db", "--workers", args.workers, ready="/health",
                             timeout=60, output=subprocess.DEVNULL))
        bare = free_port()
        servers.append(Server([sys.executable, __file__, "--bare", bare], f"http://127.0.0.1:{bare}", ready="/health", timeout=60,
                              output=subprocess.DEVNULL))
        ours = servers[0].port
        base = None
        if args.baseline:
            src = Path(args.baseline).resolve()
            if not (src / "cora_gnn" / "serve.py").is_file(): sys.exit(f"--baseline {src} is not a cora-gnn checkout")
            servers.append(serve("--checkpoint", ckpt, "--log-db", Path(tmp) / "base.db", "--workers", args.workers, ready="/health",
                                 timeout=60, output=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(src)}))
            base = servers[-1].port
        print(f"cora_gnn {Path(ckpt).parent.name}, {args.workers} worker(s), {os.cpu_count()} CPUs, wrk 1 thread, {args.duration} s per row\n")
        print("| endpoint | concurrency | bare req/s | req/s | ratio | bare p50 / p99 (ms) | p50 (ms) | p99 (ms) "
              "| errors |" + (" baseline req/s | baseline p50 / p99 (ms) | req/s vs baseline |" if base else ""))
        print("|---|---|---|---|---|---|---|---|---|" + ("---|---|---|" if base else ""))
        table = []
        for path, bodies in (("/api/v1/predict", nodes), ("/api/v1/predict/paper", papers)):
            for c in args.concurrency:
                b = wrk(f"http://127.0.0.1:{bare}", path, bodies, c, args.duration, tmp)
                first_ours = len(table) % 2 == 1  # the baseline and this checkout take turns at going first
                if first_ours: o = wrk(f"http://127.0.0.1:{ours}", path, bodies, c, args.duration, tmp)
                old = wrk(f"http://127.0.0.1:{base}", path, bodies, c, args.duration, tmp) if base else None
                if not first_ours: o = wrk(f"http://127.0.0.1:{ours}", path, bodies, c, args.duration, tmp)
                extra = f" {old['rps']:.0f} | {old['p50']:.2f} / {old['p99']:.2f} | {o['rps'] / old['rps']:.2f} |" if old else ""
                print(f"| {path} | {c} | {b['rps']:.0f} | {o['rps']:.0f} | {o['rps'] / b['rps']:.2f} "
                      f"| {b['p50']:.2f} / {b['p99']:.2f} | {o['p50']:.2f} | {o['p99']:.2f} | {o['errors']} |" + extra,
                      flush=True)
                table.append(dict(endpoint=path, concurrency=c, bare=b, ours=o, ratio=o["rps"] / b["rps"],
                                  **({"baseline": old} if old else {})))
        fixed = []
        if shutil.which("hey"):
            print("\n| endpoint | target req/s | achieved req/s | p50 (ms) | p99 (ms) | errors |\n|---|---|---|---|---|---|")
            for path, body, rate in (("/api/v1/predict", nodes[0], args.node_rate), ("/api/v1/predict/paper", papers[0], args.paper_rate)):
                drain(f"http://127.0.0.1:{ours}{path}", body)
                h = hey(f"http://127.0.0.1:{ours}{path}", body, rate, args.duration, tmp)
                print(f"| {path} | {rate} | {h['rps']:.0f} | {h['p50']:.2f} | {h['p99']:.2f} | {h['errors']} |", flush=True)
                fixed.append(dict(endpoint=path, rate=rate, **h))
        else: print("\nhey is not on PATH: no fixed-rate rows (apt-get install hey)")
        if args.json: write_json(args.json, dict(duration=args.duration, cpus=os.cpu_count(), rows=table, fixed_rate=fixed))
    except RuntimeError as e: sys.exit(f"error: {e}")  # a server that did not start, with what it printed
    finally:
        for s in servers: s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
