"""Start-up cost of the service: seconds to import `cora_gnn.serve` and the resident memory after it, then seconds from
`cora-gnn serve` to a ready `/ready` and the server's resident memory then. With --compare REV the same measurements
run, in the same run, on the package as it was at git revision REV (checked out into a temporary worktree and put
first on PYTHONPATH), side by side.

    python benchmarks/startup.py                      # this checkout
    python benchmarks/startup.py --compare f89a594    # this checkout next to the package at f89a594

Each row is the median of --repeats fresh processes, the versions taking turns. Memory is VmRSS from /proc (Linux). A GCN is trained once on Cora
(or --checkpoint is used) and served by every version, so only the code differs.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from harness import serve  # noqa: E402
from cora_gnn.files import write_json

ROOT = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).parent / "cora-gnn"
PROBE = ("import time, re; t = time.perf_counter(); import cora_gnn.serve; s = time.perf_counter() - t; "
         "rss = int(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read())[1]); print(s, rss, cora_gnn.serve.__file__)")


def rss_mib(pid:int) -> float:
    "Resident memory of process `pid` in MiB."
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024


def import_cost(env:dict) -> tuple[float, float, str]:
    "Seconds to import `cora_gnn.serve`, the process's resident MiB after it, and the file imported."
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=env["CORA_GNN_RUNS"], capture_output=True, text=True,
                         check=True).stdout.split()  # not from the checkout's root, whose cora_gnn/ `-c` would put first
    return float(out[0]), int(out[1]) / 1024, out[2]


def serve_cost(env:dict, checkpoint:Path, tmp:Path) -> tuple[float, float]:
    "Seconds from starting `cora-gnn serve` until `/ready` answers 200, and the server's resident MiB then."
    t = time.perf_counter()
    s = serve("--checkpoint", checkpoint, "--log-db", tmp / f"log-{time.time_ns()}.db", "--drift-dir", tmp / "drift",
              env=env, cwd=tmp, timeout=120, poll=0.02)
    try: return time.perf_counter() - t, rss_mib(s.proc.pid)
    finally: s.stop()


def measure(versions:list, checkpoint:Path, tmp:Path, repeats:int) -> list[dict]:
    "Median import and start-up costs of each (label, environment) version, measured in interleaved rounds (drift hits all alike)."
    got = {label: ([], []) for label, _ in versions}
    for _ in range(repeats):
        for label, env in versions:
            got[label][0].append(import_cost(env))
            got[label][1].append(serve_cost(env, checkpoint, tmp))
    med = statistics.median
    return [dict(version=label, module=imports[0][2], import_s=med(i[0] for i in imports), import_rss_mib=med(i[1] for i in imports),
                 ready_s=med(s[0] for s in starts), serve_rss_mib=med(s[1] for s in starts)) for label, (imports, starts) in got.items()]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--compare", help="a git revision to measure beside this checkout")
    p.add_argument("--checkpoint", type=Path, help="checkpoint to serve [default: a GCN trained on Cora here]")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", help="also write the rows to this file")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cora-gnn-startup-"))
    env = {**os.environ, "CORA_GNN_THREADS": "1", "WANDB_MODE": "disabled", "CORA_GNN_RUNS": str(tmp)}
    ckpt = args.checkpoint
    if ckpt is None:
        r = subprocess.run([str(EXE), "train", "--out", str(tmp / "gcn")], env=env, capture_output=True, text=True)
        if r.returncode: sys.exit(r.stderr)
        ckpt = tmp / "gcn" / "checkpoint.pt"
    versions = [("this checkout", env)]
    if args.compare:
        tree = tmp / "compare"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.compare], cwd=ROOT, check=True, capture_output=True)
        versions.append((args.compare, {**env, "PYTHONPATH": str(tree)}))
    try: rows = measure(versions, ckpt, tmp, args.repeats)
    finally:
        if args.compare: subprocess.run(["git", "worktree", "remove", "--force", str(tmp / "compare")], cwd=ROOT, capture_output=True)
    print(f"cora-gnn serve start-up, median of {args.repeats} fresh processes (GCN on Cora, one thread)\n")
    print("| version | import cora_gnn.serve (s) | RSS after import (MiB) | start to /ready (s) | server RSS when ready (MiB) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['version']} | {r['import_s']:.2f} | {r['import_rss_mib']:.0f} | {r['ready_s']:.2f} | {r['serve_rss_mib']:.0f} |")
    for r in rows: print(f"({r['version']}: imported {r['module']})")
    if args.json: write_json(args.json, rows)


if __name__ == "__main__":
    main()
