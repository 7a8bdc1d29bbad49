"""The Planetoid table: every model of the zoo on Cora and CiteSeer (public splits), mean ± std and 95% interval of test
accuracy over seeds, beside the number its paper reports; each model with its paper's settings for the dataset
(GRAND's on Cora tuned on validation: benchmarks/validation_grid.py).

    python benchmarks/accuracy.py                                # all models, Cora and CiteSeer, 10 seeds, 1 thread
    python benchmarks/accuracy.py --models grand --datasets Cora --threads 0     # torch's threads, one per core
    python benchmarks/accuracy.py --models gcn gat --seeds 3 --device cuda

Prints the device, then a Markdown table, one row per dataset and model as it finishes. `!` after the interval marks a
row whose whole 95% interval lies below the paper's number. On CUDA, scatter-based message passing is not
bit-deterministic, so a seed's result can differ slightly from run to run and from the CPU's.
"""
import argparse

import torch

from cora_gnn.config import get_device
from cora_gnn.files import write_json
from cora_gnn.models import MODELS
from cora_gnn.pipeline import INTERVAL_SEEDS, PROTOCOL, check_planetoid_params, planetoid_runs, planetoid_table, records


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["Cora", "CiteSeer"])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--epochs", type=int, default=None, help="cap every model's epochs (default: each paper's)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as `cora-gnn train`: see the README on threads; 0: torch's own, one per core)")
    p.add_argument("--json", help="also write the table to this JSON file (the report site reads it)")
    args = p.parse_args(argv)
    datasets, models = check_planetoid_params(args.datasets, args.models, args.seeds, args.epochs)  # before any work
    if args.threads: torch.set_num_threads(args.threads)
    device = get_device(args.device)
    print(f"device: {device_name(device)}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"seeds 0..{args.seeds - 1}\n{PROTOCOL}\n")
    print("| dataset | model | test acc (%) | 95% interval | paper | diff | s / run | epochs |\n|---|---|---|---|---|---|---|---|")
    rows = []
    def show(runs):
        r = records(planetoid_table(runs))[0]
        paper = "" if r["paper"] is None else f"{r['paper']} | {r['diff']:+.1f}"
        ci = f"none under {INTERVAL_SEEDS} seeds" if r["ci95_low"] is None else f"{r['ci95_low']:.1f}–{r['ci95_high']:.1f}"
        print(f"| {r['dataset']} | {r['model']} | {r['test_acc']:.1f} ± {r['std']:.1f} | {ci}"
              f"{' !' if r['below_paper'] else ''} | {paper or ' | '} | {r['s_per_run']:.2f} | {r['epochs']:.0f} |", flush=True)
        rows.append(r)
    planetoid_runs(datasets, models, args.seeds, args.epochs, callback=show, device=str(device))
    if args.json:
        write_json(args.json, dict(protocol=PROTOCOL, datasets=datasets, seeds=args.seeds, epochs=args.epochs,
                                   threads=torch.get_num_threads(), device=device_name(device), rows=rows))


def device_name(device):
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({device})"


if __name__ == "__main__":
    main()
