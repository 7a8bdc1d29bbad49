"""Hyperparameter settings of one model compared on validation accuracy over seeds: the study GRAND's Cora settings were
chosen from. Each setting is a JSON object of `TrainConfig` fields over the model's registered defaults for the dataset
(`{}`: the defaults themselves). Every run is `fit(TrainConfig(model, seed=s, **setting), data)` with one torch thread,
`--workers` runs at once. The table is sorted by mean validation accuracy, the only column a choice may read; test
accuracy is printed for the record.

    python benchmarks/validation_grid.py --model grand --dataset Cora --settings \\
        '{"consistency": 1.0, "dropout": 0.5, "hidden_dropout": 0.5, "weight_decay": 0.0005}' \\
        '{"consistency": 1.5, "dropout": 0.7, "hidden_dropout": 0.6, "weight_decay": 0.001}'

(Name every tuned knob: `{}` and partial settings start from the registered settings, which for GRAND on Cora are tuned.)
"""
import argparse, json
from concurrent.futures import ProcessPoolExecutor

import pandas as pd

from cora_gnn.files import write_json


def parse_setting(text:str) -> dict:
    "A `--settings` value: a JSON object."
    try: s = json.loads(text)
    except json.JSONDecodeError as e: raise argparse.ArgumentTypeError(f"not JSON ({e}): {text}") from None
    if not isinstance(s, dict): raise argparse.ArgumentTypeError(f"a setting is a JSON object of TrainConfig fields, got {text}")
    return s


def run(model:str, dataset:str, setting:dict, seed:int) -> dict:
    import torch
    torch.set_num_threads(1)
    from cora_gnn.data import load_dataset
    from cora_gnn.pipeline import seed_table
    row = seed_table(model, load_dataset(dataset), [seed], **setting).iloc[0]
    return dict(setting=json.dumps(setting, sort_keys=True), seed=seed, val=100 * row.val_acc, test=100 * row.test_acc,
                seconds=row.seconds, epochs=row.epochs)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="grand")
    p.add_argument("--dataset", default="Cora")
    p.add_argument("--settings", nargs="+", type=parse_setting, default=[{}])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", help="also write the table to this JSON file")
    args = p.parse_args(argv)
    from cora_gnn.data import load_dataset
    from cora_gnn.errors import UsageError
    from cora_gnn.hparams import TrainConfig
    for s in args.settings:  # a bad field fails here, before any run
        try: TrainConfig(args.model, **s)
        except (UsageError, TypeError) as e: p.error(f"setting {json.dumps(s)}: {e}")
    load_dataset(args.dataset)  # fetched and processed once, before the workers read it
    jobs = [(args.model, args.dataset, s, seed) for s in args.settings for seed in range(args.seeds)]
    with ProcessPoolExecutor(args.workers) as ex:
        runs = pd.DataFrame(ex.map(run, *zip(*jobs)))
    table = runs.groupby("setting", sort=False).agg(val=("val", "mean"), val_std=("val", "std"), test=("test", "mean"),
                                                   test_std=("test", "std"), s_per_run=("seconds", "mean"), epochs=("epochs", "mean"))
    print(f"{args.model} on {args.dataset}, seeds 0..{args.seeds - 1}, one thread a run, {args.workers} at once\n")
    print("| setting | val acc (%) | test acc (%) | s / run | epochs |\n|---|---|---|---|---|")
    for name, r in table.sort_values("val", ascending=False).iterrows():
        print(f"| `{name}` | {r.val:.2f} ± {r.val_std:.2f} | {r.test:.2f} ± {r.test_std:.2f} | {r.s_per_run:.1f} | {r.epochs:.0f} |")
    if args.json: write_json(args.json, dict(model=args.model, dataset=args.dataset, seeds=args.seeds,
                                             rows=table.sort_values("val", ascending=False).reset_index().to_dict("records")))


if __name__ == "__main__":
    main()
