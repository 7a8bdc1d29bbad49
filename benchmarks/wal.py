"""The prediction log's write-ahead log under sustained load: the size of the SQLite `-wal` file, sampled every second
while wrk saturates the node endpoint, and the throughput, for this checkout and (--baseline) another one, in turn.

    python benchmarks/wal.py --duration 120 --baseline /tmp/cora-gnn-old   # the Measurements page's table (5 minutes)
    python benchmarks/wal.py --duration 5                                   # this checkout alone, a smoke size

--baseline is a checkout of another commit (`git worktree add /tmp/cora-gnn-old <commit>`) served with the same
checkpoint. Each service runs alone (one, then the other), with its defaults but for the log's path. Needs wrk.
"""
import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from harness import serve  # noqa: E402
from serve_load import workload, wrk  # noqa: E402
from cora_gnn.files import write_json


def sizes(wal:Path, every:float, stop:threading.Event) -> list[float]:
    "The size of `wal` in MB every `every` seconds until `stop` (filled in by a thread)."
    out = []
    def run():
        while not stop.wait(every): out.append(wal.stat().st_size / 2**20 if wal.exists() else 0.0)
    threading.Thread(target=run, daemon=True).start()
    return out


def measure(name:str, ckpt, nodes, args, tmp:Path, env:dict) -> dict:
    "Serve `ckpt` (with `env`), saturate it for `args.duration` s, and return the WAL sizes, throughput and rows logged."
    db = tmp / f"{name}.db"
    s = serve("--checkpoint", ckpt, "--log-db", db, ready="/health", timeout=90, output=subprocess.DEVNULL, env=env)
    try:
        stop = threading.Event()
        mb = sizes(Path(f"{db}-wal"), 1.0, stop)
        load = wrk(s.url, "/api/v1/predict", nodes, args.concurrency, args.duration, tmp)
        stop.set()
    finally: s.stop()
    with closing(sqlite3.connect(db)) as conn: rows = conn.execute("SELECT count(*) FROM predictions").fetchone()[0]
    return dict(version=name, mb=mb, max_mb=max(mb, default=0.0), rps=load["rps"], p99=load["p99"], errors=load["errors"],
                rows=rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="checkpoint to serve (default: train a GCN with its defaults)")
    p.add_argument("--duration", type=int, default=120, help="seconds of load per version")
    p.add_argument("--concurrency", type=int, default=8, help="wrk connections")
    p.add_argument("--every", type=int, default=10, help="seconds between the rows of the size table")
    p.add_argument("--baseline", help="a checkout of another commit, measured first, with the same checkpoint")
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    if not shutil.which("wrk"): sys.exit("this benchmark needs wrk on PATH (Debian/Ubuntu: apt-get install wrk)")
    tmp = Path(tempfile.mkdtemp(prefix="cora-gnn-wal-"))
    try:
        ckpt, nodes, _ = workload(args.checkpoint, tmp)
        versions = [("this checkout", dict(os.environ))]
        if args.baseline:
            src = Path(args.baseline).resolve()
            if not (src / "cora_gnn" / "serve.py").is_file(): sys.exit(f"--baseline {src} is not a cora-gnn checkout")
            versions.insert(0, ("baseline", {**os.environ, "PYTHONPATH": str(src)}))
        res = [measure(name, ckpt, nodes, args, tmp, env) for name, env in versions]
    except RuntimeError as e: sys.exit(f"error: {e}")  # a server that did not start, with what it printed
    finally: shutil.rmtree(tmp, ignore_errors=True)
    print(f"{args.duration} s of wrk ({args.concurrency} connections) on /api/v1/predict, {os.cpu_count()} CPUs, "
          "the -wal file sampled every second\n")
    print("| seconds | " + " | ".join(f"{r['version']}: WAL (MB)" for r in res) + " |\n|---|" + "---|" * len(res))
    for t in range(args.every - 1, max(len(r["mb"]) for r in res), args.every):
        print(f"| {t + 1} | " + " | ".join(f"{r['mb'][t]:.1f}" if t < len(r["mb"]) else "" for r in res) + " |")
    print("\n| version | req/s | p99 (ms) | errors | rows logged | largest WAL (MB) |\n|---|---|---|---|---|---|")
    for r in res:
        print(f"| {r['version']} | {r['rps']:.0f} | {r['p99']:.2f} | {r['errors']} | {r['rows']} | {r['max_mb']:.1f} |")
    if len(res) == 2: print(f"\nthroughput, this checkout / baseline: {res[1]['rps'] / res[0]['rps']:.2f}")
    if args.json: write_json(args.json, dict(duration=args.duration, concurrency=args.concurrency, rows=res))


if __name__ == "__main__":
    main()
