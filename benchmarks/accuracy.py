"""Accuracy of the model zoo on a Planetoid dataset: mean ± std test accuracy over seeds, each model with its defaults.

    python benchmarks/accuracy.py                      # all models, 10 seeds, Cora
    python benchmarks/accuracy.py --models gcn gat --seeds 3
    python benchmarks/accuracy.py --device cuda        # the same on a GPU

Prints the device, then a Markdown table (model, test accuracy, validation accuracy, epochs, seconds per run,
milliseconds per epoch). On CUDA, scatter-based message passing is not bit-deterministic, so a seed's
result can differ slightly from run to run and from the CPU's.
"""
import argparse
import json
from pathlib import Path

import pandas as pd
import torch

from cora_gnn.data import load_dataset
from cora_gnn.models import MODELS
from cora_gnn.config import get_device
from cora_gnn.models import TrainConfig
from cora_gnn.train import fit


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="Cora")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as `cora-gnn train`: see the README on threads)")
    p.add_argument("--json", help="also write the table to this JSON file (the report site reads it)")
    args = p.parse_args(argv)
    if args.threads: torch.set_num_threads(args.threads)
    device = get_device(args.device)
    data = load_dataset(args.dataset)
    print(f"device: {device_name(device)}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    print(f"{args.dataset}, public split, {args.seeds} seeds (0..{args.seeds - 1}), "
          "test accuracy at the best validation epoch\n")
    print("| model | test acc (%) | val acc (%) | epochs | s / run | ms / epoch |\n|---|---|---|---|---|---|")
    table = []
    for name in args.models:
        runs = pd.DataFrame([fit(TrainConfig(model=name, seed=s, device=str(device)), data, progress=False).metrics
                             for s in range(args.seeds)])
        print(f"| {name} | {pct(runs.test_acc)} | {pct(runs.val_acc)} | {runs.epochs.mean():.0f} "
              f"| {runs.seconds.mean():.2f} | {1000 * (runs.seconds / runs.epochs).mean():.1f} |", flush=True)
        table.append(dict(model=name, test_acc=100 * runs.test_acc.mean(), test_std=100 * runs.test_acc.std(ddof=1 if len(runs) > 1 else 0),
                          val_acc=100 * runs.val_acc.mean(), epochs=runs.epochs.mean(), seconds=runs.seconds.mean(),
                          ms_per_epoch=1000 * (runs.seconds / runs.epochs).mean()))
    if args.json:
        Path(args.json).write_text(json.dumps(dict(dataset=args.dataset, seeds=args.seeds, device=device_name(device), rows=table), indent=2))


def device_name(device):
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({device})"


def pct(xs):
    "mean ± sample std, in percent"
    return f"{100 * xs.mean():.1f} ± {100 * (xs.std() if len(xs) > 1 else 0):.1f}"


if __name__ == "__main__":
    main()
