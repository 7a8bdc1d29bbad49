"""The whole benchmark suite in one command: accuracy per model, training speed against PyG-example models, inference
variants, threads, explainers, neighbour samplers, and the service under load. Runs each benchmark script (their own
tables stream by), keeps their JSON in --out, prints each stage's time, then one summary table.

    python benchmarks/suite.py                # full sizes: 10 seeds, 5 s per load row (about an hour on 2 cores)
    python benchmarks/suite.py --quick        # small sizes (a few minutes)
    python benchmarks/suite.py --smoke        # the smallest that still runs every stage (its test, tests/test_benchmarks.py)

The service rows need `wrk` (closed loop) and `hey` (fixed rate) on PATH (`apt-get install wrk hey`); without them the
suite says so and goes on.

Every benchmark of this folder, each a script that prints its table and takes --json (the suite runs the first seven):
  accuracy.py         the Planetoid table: the zoo on Cora and CiteSeer over seeds, beside the papers
  speed.py            training speed of `fit` against models written as in PyG's examples
  inference.py        inference variants: eager, cached, torch.compile, ONNX Runtime, int8
  threads.py          torch threads and the OpenMP wait policy, alone and beside a busy process
  explain.py          explainers: time per explanation and fidelity
  sampler.py          the torch neighbour sampler against PyG's compiled one: batches per second, accuracy
  serve_load.py       the service under load: throughput and latency of both predict endpoints
  service_ops.py      the service under operations: drift jobs, SQLite against PostgreSQL, one and two workers
  startup.py          the service's import time, start-up time and memory (--compare REV)
  wal.py              the prediction log's write-ahead log under two minutes of saturating load (--baseline DIR)
  estimate_seeds.py   the label-free accuracy estimate over model seeds
  ood_scores.py       out-of-distribution scores side by side on perturbed streams
  validation_grid.py  hyperparameter settings compared on validation accuracy over seeds
"""
import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLER_SMALL = ["--graph", "synthetic-5k", "--batch-size", 256, "--seeds", 2, "--epochs", 3, "--rounds", 1]
SIZES = {  # each benchmark's arguments at full size, --quick and --smoke
    "accuracy": (["--seeds", 10], ["--seeds", 2, "--models", "gcn", "sgc", "--datasets", "Cora"],
                 ["--seeds", 2, "--models", "gcn", "--datasets", "Cora", "--epochs", 10]),
    "speed": (["--seeds", 10], ["--seeds", 2, "--models", "gcn"], ["--seeds", 1, "--models", "gcn", "--epochs", 10]),
    "inference": (["--reps", 200, "--rounds", 5], ["--reps", 20, "--rounds", 2],  # smoke: no torch.compile (a minute of compiling)
                  ["--reps", 4, "--rounds", 1, "--epochs", 20, "--variants", "eager", "cached", "k-hop", "onnx", "int8"]),
    "threads": (["--runs", 3], ["--runs", 1, "--models", "gcn"],
                ["--runs", 1, "--models", "gcn", "--epochs", 10, "--threads", 1, "--policies", "passive"]),
    "explain": (["--nodes", 100], ["--nodes", 10, "--gnn-epochs", 20], ["--nodes", 10, "--gnn-epochs", 20]),
    "sampler": ([], SAMPLER_SMALL, SAMPLER_SMALL),
    "serve_load": (["--duration", 5], ["--duration", 2], ["--duration", 1]),  # needs wrk (and hey for the fixed rates)
}


def run(script, out, *args):
    "Run `benchmarks/<script>.py` with `args`, its JSON into `out/<script>.json`; returns the JSON or None."
    path = out / f"{script}.json"
    print(f"\n== {script} {' '.join(map(str, args))}", flush=True)
    t = time.perf_counter()
    r = subprocess.run([sys.executable, str(HERE / f"{script}.py"), *map(str, args), "--json", str(path)])
    failed = f"failed (exit {r.returncode}), " if r.returncode else ""
    print(f"== {script}: {failed}{time.perf_counter() - t:.0f} s", flush=True)  # which stage took the time
    return json.loads(path.read_text()) if path.is_file() else None


def summary(res) -> list[tuple[str, str]]:
    "The suite's headline numbers, as (what, value) rows."
    rows = []
    if a := res.get("accuracy"):
        for r in a["rows"]:
            rows.append((f"{r['model']} test accuracy, {a['seeds']} seeds ({r['dataset']})", f"{r['test_acc']:.1f} ± {r['std']:.1f} % ({r['s_per_run']:.2f} s / run)"))
    if s := res.get("speed"):
        acc = {(r["model"], r["implementation"]): r["test_acc"] for r in s["rows"]}
        for m, ratio in s["ratios"].items():
            rows.append((f"{m} fit time / PyG example ({s['epochs']} epochs)",
                         f"{ratio:.2f} (accuracy {acc[(m, 'cora_gnn fit')]:.1f} vs {acc[(m, 'PyG example')]:.1f} %)"))
    for r in res.get("inference") or []:
        if "ms" in r: rows.append((f"{r['model']} {r['path']} inference, {r['variant']}", f"{r['ms']:.2f} ms ({r['speedup']:.2f}x eager)"))
        else: rows.append((f"{r['model']} {r['path']} inference, {r['variant']}", f"failed: {r['error']}"))
    if t := res.get("threads"):
        for m in dict.fromkeys(r["model"] for r in t):
            best = min((r for r in t if r["model"] == m), key=lambda r: r["seconds"])
            worst = max((r for r in t if r["model"] == m), key=lambda r: r["seconds"])
            rows.append((f"{m} {best['epochs']} epochs, fastest thread setting", f"{best['threads']} threads, {best['policy']}, "
                         f"{'busy' if best['busy'] else 'idle'} machine: {best['seconds']:.2f} s"))
            rows.append((f"{m} {worst['epochs']} epochs, slowest thread setting", f"{worst['threads']} threads, {worst['policy']}, "
                         f"{'busy' if worst['busy'] else 'idle'} machine: {worst['seconds']:.2f} s"))
    if ex := res.get("explain"):
        for r in ex["rows"]:
            rows.append((f"{ex['model']} explanation, {r['explainer']} ({ex['nodes']} nodes)", f"p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, "
                         f"drop without the top items {r['drop']:.3f} (random {r['random_drop']:.3f})"))
    if sa := res.get("sampler"):
        for r in sa["rows"]:
            rows.append((f"{r['sampler']} neighbour sampler ({sa['graph']}, batches of {sa['batch_size']})",
                         f"{r['batches_per_s']:.1f} batches / s; GraphSAGE {r['test_acc']:.1f} ± {r['std']:.1f} % ({sa['seeds']} seeds)"))
    if sl := res.get("serve_load"):
        for r in sl["rows"]:
            rows.append((f"{r['endpoint']} at {r['concurrency']} connections",
                         f"{r['ours']['rps']:.0f} req/s ({r['ratio']:.2f}x bare), p50 {r['ours']['p50']:.2f} ms, p99 {r['ours']['p99']:.2f} ms"))
        for r in sl.get("fixed_rate", []):
            rows.append((f"{r['endpoint']} at {r['rate']} req/s", f"p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms ({r['rps']:.0f} req/s achieved)"))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes: 2 seeds, few repetitions, 2 s per load row")
    p.add_argument("--smoke", action="store_true", help="the smallest sizes that run every stage (seconds each)")
    p.add_argument("--out", default="build/benchmarks", help="folder for each benchmark's JSON")
    p.add_argument("--skip", nargs="+", default=[], choices=list(SIZES), metavar="STAGE", help="leave these stages out")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    size = 2 if args.smoke else 1 if args.quick else 0
    stages = [name for name in SIZES if name not in args.skip]
    if "serve_load" in stages and not shutil.which("wrk"):
        print("\nwrk is not on PATH: no service rows (apt-get install wrk hey)")
        stages.remove("serve_load")
    res = {name: run(name, out, *SIZES[name][size]) for name in stages}
    print("\n== summary\n\n| benchmark | result |\n|---|---|")
    for what, value in summary(res): print(f"| {what} | {value} |")
    failed = [k for k, v in res.items() if v is None]
    if failed: sys.exit(f"\nfailed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
