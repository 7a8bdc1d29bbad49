"""Training speed of cora_gnn's `fit` against a GCN written as in PyG's `examples/gcn.py`, side by side in one process.

    python benchmarks/speed.py              # 10 seeds, 200 epochs each, no early stopping
    python benchmarks/speed.py --seeds 3

Both train the same architecture (two cached GCNConv layers, 16 hidden units, dropout 0.5, Adam with lr 0.01 and
weight decay 5e-4 on the first layer) for 200 epochs and evaluate every epoch; runs alternate between the two so
that both see the same machine load. Prints a Markdown table and the time ratio.
"""
import argparse
import json
from pathlib import Path
import statistics as st
import time

import torch
import torch.nn.functional as F
from torch_geometric.nn import GCNConv

from cora_gnn.config import seed_everything
from cora_gnn.data import load_dataset
from cora_gnn.train import TrainConfig, fit


class ExampleGCN(torch.nn.Module):
    "The model of PyG's examples/gcn.py (without GDC)."

    def __init__(self, in_channels, hidden_channels, out_channels):
        super().__init__()
        self.conv1 = GCNConv(in_channels, hidden_channels, cached=True)
        self.conv2 = GCNConv(hidden_channels, out_channels, cached=True)

    def forward(self, x, edge_index):
        x = F.dropout(x, p=0.5, training=self.training)
        x = self.conv1(x, edge_index).relu()
        x = F.dropout(x, p=0.5, training=self.training)
        return self.conv2(x, edge_index)


def example_run(data, seed, epochs=200):
    "The training loop of PyG's examples/gcn.py: train, then evaluate all splits, keep test acc at the best val acc."
    seed_everything(seed)
    start = time.perf_counter()
    model = ExampleGCN(data.num_features, 16, int(data.y.max()) + 1)
    opt = torch.optim.Adam([dict(params=model.conv1.parameters(), weight_decay=5e-4),
                            dict(params=model.conv2.parameters(), weight_decay=0)], lr=0.01)
    best_val = test_acc = 0
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        out = model(data.x, data.edge_index)
        F.cross_entropy(out[data.train_mask], data.y[data.train_mask]).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(data.x, data.edge_index).argmax(-1)
        masks = (data.train_mask, data.val_mask, data.test_mask)
        accs = [int((pred[m] == data.y[m]).sum()) / int(m.sum()) for m in masks]
        if accs[1] > best_val:
            best_val, test_acc = accs[1], accs[2]
    return time.perf_counter() - start, test_acc


def ours_run(data, seed, epochs=200):
    start = time.perf_counter()
    res = fit(TrainConfig("gcn", epochs=epochs, patience=0, seed=seed), data, progress=False)
    return time.perf_counter() - start, res.metrics["test_acc"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--json", help="also write the table to this JSON file (the report site reads it)")
    args = p.parse_args(argv)
    data = load_dataset("Cora")
    example_run(data, 0, 5), ours_run(data, 0, 5)  # warm-up
    res = {"PyG examples/gcn.py": [], "cora_gnn fit": []}
    for seed in range(args.seeds):
        res["PyG examples/gcn.py"].append(example_run(data, seed, args.epochs))
        res["cora_gnn fit"].append(ours_run(data, seed, args.epochs))
    print(f"GCN on Cora, {args.epochs} epochs, no early stopping, {args.seeds} seeds, "
          f"{torch.get_num_threads()} threads\n")
    print("| implementation | s / run | ms / epoch | test acc (%) |\n|---|---|---|---|")
    table = []
    for name, runs in res.items():
        secs, accs = [r[0] for r in runs], [100 * r[1] for r in runs]
        sd = st.stdev(accs) if len(accs) > 1 else 0.0
        ms_epoch = 1000 * st.mean(secs) / args.epochs
        print(f"| {name} | {st.mean(secs):.2f} | {ms_epoch:.1f} | {st.mean(accs):.1f} ± {sd:.1f} |")
        table.append(dict(implementation=name, seconds=st.mean(secs), ms_per_epoch=ms_epoch, test_acc=st.mean(accs), test_std=sd))
    ratio = st.mean(r[0] for r in res["cora_gnn fit"]) / st.mean(r[0] for r in res["PyG examples/gcn.py"])
    print(f"\ntime ratio cora_gnn / PyG example: {ratio:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(epochs=args.epochs, seeds=args.seeds, threads=torch.get_num_threads(),
                                                   ratio=ratio, rows=table), indent=2))


if __name__ == "__main__":
    main()
