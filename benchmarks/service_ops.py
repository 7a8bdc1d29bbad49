"""The service under operations: node-prediction latency with and without a drift job running, and throughput and
latency with the SQLite and the PostgreSQL prediction log at 1 and 2 workers, side by side in one run.

    python benchmarks/service_ops.py                          # trains a GCN first if no --checkpoint
    python benchmarks/service_ops.py --checkpoint runs/gcn/checkpoint.pt --duration 10

Table 1: `hey` sends node predictions at a fixed rate (--rate) to a one-worker `cora-gnn serve`, first with no drift job,
then beside a busy loop of the job's priority (what any work on the other core costs), then while drift jobs run back
to back (each over the last 1000 rows of a log filled beforehand). Goal: p99 during a job within 2x of p99 without.
Table 2: `wrk` (closed loop, --concurrency connections) on the node endpoint, with the log in SQLite or in a
throwaway PostgreSQL server on this machine (scripts/tmp_postgres.py), 1 and 2 workers; ratios against SQLite with one
worker. Needs wrk and hey (apt-get install wrk hey) and PostgreSQL's server (apt-get install postgresql).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "scripts")]
from harness import serve as serve_on_free_port  # noqa: E402
from serve_load import drain, hey, workload, wrk  # noqa: E402
from tmp_postgres import TempPostgres  # noqa: E402
from cora_gnn.files import write_json

TOKEN = "benchmark-token"
BUSY = "import os; os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))\nwhile True: pass"


def serve(ckpt, log_db, tmp, workers=1):
    "Start `cora-gnn serve` on a free port (scripts/harness.py); returns (server, url)."
    env = {**os.environ, "CORA_GNN_ADMIN_TOKEN": TOKEN, "CORA_GNN_DRAIN": "0"}
    s = serve_on_free_port("--checkpoint", ckpt, "--log-db", log_db, "--drift-dir", Path(tmp) / f"drift-{workers}-{time.time_ns()}",
                           "--workers", workers, env=env, ready="/health", timeout=60, output=subprocess.DEVNULL)
    return s, s.url


def stop(server):
    server.stop(timeout=60)


class DriftJobs(threading.Thread):
    "Keep drift jobs running back to back on the service at `url` until stopped; counts the jobs that finished."
    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.done, self.stop_ = url, 0, threading.Event()

    def run(self):
        auth = {"Authorization": f"Bearer {TOKEN}"}
        while not self.stop_.is_set():
            job = httpx.post(self.url + "/api/v1/drift", json={"last": 1000}, headers=auth, timeout=30).json()
            while job["state"] == "running" and not self.stop_.is_set():
                time.sleep(0.2)
                job = httpx.get(self.url + job["poll"], headers=auth, timeout=30).json()
            self.done += job["state"] == "done"

    def running(self):
        "Wait until a job is running (its process started)."
        self.start()
        time.sleep(3)
        return self


def drift_table(ckpt, tmp, nodes, papers, rate, duration):
    proc, url = serve(ckpt, Path(tmp) / "drift-log.db", tmp)
    try:
        with httpx.Client(timeout=30) as c:  # a log worth a report: 1000 rows, papers and nodes
            for i in range(500): c.post(url + "/api/v1/predict/paper", json=papers[i % len(papers)]).raise_for_status()
            for i in range(500): c.post(url + "/api/v1/predict", json=nodes[i % len(nodes)]).raise_for_status()
        drain(url + "/api/v1/predict", nodes[0])
        rows = [dict(case="no drift job", jobs=0, **hey(url + "/api/v1/predict", nodes[0], rate, duration, tmp))]
        busy = subprocess.Popen([sys.executable, "-c", BUSY])  # the floor: any process keeping the other core busy
        try: rows.append(dict(case="a busy loop at the job's priority", jobs=0, **hey(url + "/api/v1/predict", nodes[0], rate, duration, tmp)))
        finally: busy.kill()
        jobs = DriftJobs(url).running()
        h = hey(url + "/api/v1/predict", nodes[0], rate, duration, tmp)
        jobs.stop_.set()
        jobs.join(120)
        rows.append(dict(case="drift jobs running back to back", jobs=jobs.done, **h))
        return rows
    finally:
        stop(proc)


def backend_table(ckpt, tmp, nodes, concurrency, duration, pg_url):
    rows = []
    for backend, log_db in (("SQLite", Path(tmp) / "load-{w}.db"), ("PostgreSQL", pg_url)):
        for workers in (1, 2):
            proc, url = serve(ckpt, str(log_db).format(w=workers), tmp, workers)
            try:
                drain(url + "/api/v1/predict", nodes[0])
                rows.append(dict(log=backend, workers=workers, **wrk(url, "/api/v1/predict", nodes, concurrency, duration, tmp)))
            finally:
                stop(proc)
    base = rows[0]["rps"]
    for r in rows: r["ratio"] = r["rps"] / base
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="checkpoint to serve (default: train a GCN with its defaults)")
    p.add_argument("--duration", type=int, default=8, help="seconds per measurement")
    p.add_argument("--rate", type=int, default=200, help="node requests per second in table 1")
    p.add_argument("--concurrency", type=int, default=16, help="wrk connections in table 2")
    p.add_argument("--json", help="also write both tables to this JSON file")
    args = p.parse_args(argv)
    for tool in ("wrk", "hey"):
        if not shutil.which(tool): sys.exit(f"this benchmark needs {tool} on PATH (Debian/Ubuntu: apt-get install {tool})")

    tmp = tempfile.mkdtemp(prefix="cora-gnn-ops-")
    ckpt, nodes, papers = workload(args.checkpoint, tmp)
    try:
        print(f"cora_gnn {Path(ckpt).parent.name}, {os.cpu_count()} CPUs, {args.duration} s per row\n")
        drift = drift_table(ckpt, tmp, nodes, papers, args.rate, args.duration)
        print(f"| node predictions at {args.rate} req/s (hey) | drift jobs finished | achieved req/s | p50 (ms) | p99 (ms) | errors |")
        print("|---|---|---|---|---|---|")
        for r in drift: print(f"| {r['case']} | {r['jobs']} | {r['rps']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['errors']} |")
        print(f"\np99 during drift jobs / p99 without: {drift[2]['p99'] / drift[0]['p99']:.2f} (goal: at most 2); "
              f"with a busy loop: {drift[1]['p99'] / drift[0]['p99']:.2f}\n", flush=True)
        with TempPostgres() as pg:
            backends = backend_table(ckpt, tmp, nodes, args.concurrency, args.duration, pg.url)
        print(f"| prediction log | workers | req/s at {args.concurrency} connections (wrk) | ratio to SQLite, 1 worker | p50 (ms) | p99 (ms) | errors |")
        print("|---|---|---|---|---|---|---|")
        for r in backends:
            print(f"| {r['log']} | {r['workers']} | {r['rps']:.0f} | {r['ratio']:.2f} | {r['p50']:.2f} | {r['p99']:.2f} | {r['errors']} |")
        if args.json:
            write_json(args.json, dict(duration=args.duration, cpus=os.cpu_count(), rate=args.rate,
                                                       drift=drift, backends=backends))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
