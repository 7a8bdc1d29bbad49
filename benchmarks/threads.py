"""Threads and the OpenMP wait policy: training time of GCN and GAT (200 epochs unless --epochs, no early stopping) with 1 or all
cores' worth of torch threads, OpenMP's passive or active waiting, alone or next to another busy process, each
setting in a fresh process (OpenMP reads its settings when it starts).

    python benchmarks/threads.py                  # median of 3 runs per setting
    python benchmarks/threads.py --runs 1 --models gcn
    python benchmarks/threads.py --runs 1 --models gcn --threads 1 --policies passive   # two settings: idle and busy

"busy neighbour" runs a second process that keeps one core busy with its own torch work (one thread), as a second
training run, a service worker or a test runner would. Prints a Markdown table.
"""
import argparse
import os
import statistics as st
import subprocess
import sys
import time

from cora_gnn.files import write_json

CHILD = """
import sys, time, torch
from cora_gnn.data import load_dataset
from cora_gnn.hparams import TrainConfig
from cora_gnn.train import fit
data = load_dataset("Cora")
fit(TrainConfig(sys.argv[1], epochs=5, patience=0), data, progress=False)  # warm-up
t = time.perf_counter()
fit(TrainConfig(sys.argv[1], epochs=int(sys.argv[2]), patience=0), data, progress=False)
print(time.perf_counter() - t)
"""
NEIGHBOUR = "import torch\ntorch.set_num_threads(1)\na = torch.randn(512, 512)\nwhile True: a = (a @ a).tanh()\n"


def run(model, threads, policy, busy, epochs=200):
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": policy}
    neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR], env={**os.environ, "OMP_NUM_THREADS": "1"}) if busy else None
    try:
        if neighbour: time.sleep(2)  # let it start
        out = subprocess.run([sys.executable, "-c", CHILD, model, str(epochs)], env=env, capture_output=True, text=True, timeout=900)
        if out.returncode: sys.exit(out.stderr[-2000:])
        return float(out.stdout.strip().splitlines()[-1])
    finally:
        if neighbour: neighbour.kill(); neighbour.wait()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["gcn", "gat"])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--epochs", type=int, default=200, help="epochs timed in each run")
    p.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count()}), help="torch thread counts to try")
    p.add_argument("--policies", nargs="+", default=["passive", "active"], choices=["passive", "active"], help="OpenMP wait policies")
    p.add_argument("--json", help="also write the table to this JSON file")
    args = p.parse_args(argv)
    print(f"{os.cpu_count()} CPUs; seconds for {args.epochs} epochs, median of {args.runs} runs\n")
    print("| model | torch threads | OMP_WAIT_POLICY | busy neighbour | seconds | vs best |\n|---|---|---|---|---|---|")
    rows = []
    for model in args.models:
        found = []
        for busy in (False, True):
            for threads in args.threads:
                for policy in args.policies:
                    secs = st.median(run(model, threads, policy, busy, args.epochs) for _ in range(args.runs))
                    found.append(dict(model=model, threads=threads, policy=policy, busy=busy, epochs=args.epochs, seconds=secs))
        best = min(r["seconds"] for r in found)
        for r in found:
            print(f"| {model} | {r['threads']} | {r['policy']} | {'yes' if r['busy'] else 'no'} | {r['seconds']:.2f} "
                  f"| {r['seconds'] / best:.2f}x |", flush=True)
        rows += found
    if args.json: write_json(args.json, rows)


if __name__ == "__main__":
    main()
