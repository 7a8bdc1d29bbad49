"""The whole benchmark suite in one command: accuracy per model, training speed against PyG-example models, inference
variants, threads, explainers, neighbour samplers, and the service under load. Runs each benchmark script (their own tables stream by), keeps their
JSON in --out, then prints one summary table.

    python benchmarks/suite.py                # full sizes: 10 seeds, 5 s per load row (about an hour on 2 cores)
    python benchmarks/suite.py --quick        # smoke-test sizes (a few minutes)

The service rows need `wrk` (closed loop) and `hey` (fixed rate) on PATH (`apt-get install wrk hey`); without them the
suite says so and goes on.
"""
import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(script, out, *args):
    "Run `benchmarks/<script>.py` with `args`, its JSON into `out/<script>.json`; returns the JSON or None."
    path = out / f"{script}.json"
    print(f"\n== {script} {' '.join(map(str, args))}", flush=True)
    r = subprocess.run([sys.executable, str(HERE / f"{script}.py"), *map(str, args), "--json", str(path)])
    if r.returncode: print(f"{script} failed (exit {r.returncode})", flush=True)
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
            rows.append((f"{m} 200 epochs, fastest thread setting", f"{best['threads']} threads, {best['policy']}, "
                         f"{'busy' if best['busy'] else 'idle'} machine: {best['seconds']:.2f} s"))
            rows.append((f"{m} 200 epochs, slowest thread setting", f"{worst['threads']} threads, {worst['policy']}, "
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
    p.add_argument("--out", default="build/benchmarks", help="folder for each benchmark's JSON")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    q = args.quick
    res = {"accuracy": run("accuracy", out, "--seeds", 2 if q else 10, *(["--models", "gcn", "sgc", "--datasets", "Cora"] if q else [])),
           "speed": run("speed", out, "--seeds", 2 if q else 10, *(["--models", "gcn"] if q else [])),
           "inference": run("inference", out, "--reps", 20 if q else 200, "--rounds", 2 if q else 5),
           "threads": run("threads", out, "--runs", 1 if q else 3, *(["--models", "gcn"] if q else [])),
           "explain": run("explain", out, "--nodes", 10 if q else 100, *(["--gnn-epochs", 20] if q else [])),
           "sampler": run("sampler", out, *(["--graph", "synthetic-5k", "--batch-size", 256, "--seeds", 2, "--epochs", 3, "--rounds", 1] if q else []))}
    if shutil.which("wrk"): res["serve_load"] = run("serve_load", out, "--duration", 2 if q else 5)
    else: print("\nwrk is not on PATH: no service rows (apt-get install wrk hey)")
    print("\n== summary\n\n| benchmark | result |\n|---|---|")
    for what, value in summary(res): print(f"| {what} | {value} |")
    failed = [k for k, v in res.items() if v is None]
    if failed: sys.exit(f"\nfailed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
