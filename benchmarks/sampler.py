"""Neighbour samplers side by side in one process: cora_gnn's sampler on PyTorch alone against PyG's compiled one
(torch-sparse or pyg-lib), where that is installed: sampling speed, and the accuracy of GraphSAGE trained in mini-batches.

    python benchmarks/sampler.py                                   # synthetic-100k, batches of 1,024, fanouts 10,5, 5 seeds
    python benchmarks/sampler.py --graph synthetic-20k --seeds 2 --epochs 2 --rounds 1    # smoke size

Speed: `--rounds` passes over the training papers, each pass a full epoch of batches drawn (sampled and joined with
their features and labels, as training sees them) without a model; batches per second, median over the rounds.
Accuracy: `fit` of GraphSAGE for `--epochs` epochs (no early stopping) per seed with each sampler; test accuracy at the
best validation epoch, mean and std over seeds. Samplers alternate round by round and seed by seed, so both see the same
machine load. With fanouts -1 both samplers are deterministic, and the script checks that they give the same subgraph.
Without a compiled sampler (the default install) only the torch rows are printed; `bash scripts/sampler.sh`
builds torch-sparse (needs g++; 15 to 22 minutes on 2 cores here). Prints a Markdown table.
"""
import argparse
import os
import statistics as st
import time
from unittest.mock import patch

import torch

from cora_gnn.config import ENV_SAMPLER
from cora_gnn.data import load_graph
from cora_gnn.hparams import TrainConfig
from cora_gnn.sampling import compiled_sampler, neighbor_loader
from cora_gnn.train import fit
from cora_gnn.files import write_json


def batches_per_second(data, sampler, fanouts, batch_size, seed) -> float:
    "One epoch of batches drawn with `sampler`: batches per second."
    torch.manual_seed(seed)
    loader = neighbor_loader(data, fanouts, data.train_mask.nonzero().view(-1), batch_size, sampler=sampler)
    t = time.perf_counter()
    n = sum(1 for _ in loader)
    return n / (time.perf_counter() - t)


def same_as_pyg(data, batch_size) -> bool:
    "With fanouts -1 (every neighbour) nothing is random: do both samplers give the same subgraph (seeds first, same nodes and edges)?"
    def subgraph(sampler):
        b = next(iter(neighbor_loader(data, [-1, -1], torch.arange(batch_size), batch_size, shuffle=False, sampler=sampler)))
        return b.n_id[:batch_size].tolist(), sorted(b.n_id.tolist()), sorted(b.e_id.tolist())
    return subgraph("torch") == subgraph("pyg")  # the order of the other nodes follows PyG's unstable sort of the edges


def accuracy(data, sampler, fanouts, batch_size, epochs, seed) -> float:
    "Test accuracy (%) of GraphSAGE trained in mini-batches drawn by `sampler`."
    cfg = TrainConfig("sage", batch_size=batch_size, fanouts=tuple(fanouts), epochs=epochs, patience=0, seed=seed)
    with patch.dict(os.environ, {ENV_SAMPLER: sampler}):  # fit reads the choice from the setting
        res = fit(cfg, data, progress=False)
    assert res.metrics["sampler"] == sampler, res.metrics
    return 100 * res.metrics["test_acc"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--graph", default="synthetic-100k", help="a synthetic-<papers> graph or a Planetoid name")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--fanouts", default="10,5")
    p.add_argument("--rounds", type=int, default=5, help="epochs of batches drawn per sampler for the speed column")
    p.add_argument("--seeds", type=int, default=5, help="training runs per sampler for the accuracy column (0: speed only)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--json", help="also write the table to this JSON file")
    args = p.parse_args(argv)
    fanouts = [int(f) for f in args.fanouts.split(",")]
    samplers = ["torch", "pyg"] if compiled_sampler() else ["torch"]
    data = load_graph(args.graph)
    print(f"{args.graph}: {data.num_nodes:,} papers, {data.num_edges:,} edges, {int(data.train_mask.sum()):,} training papers; "
          f"batches of {args.batch_size}, fanouts {args.fanouts}; {torch.get_num_threads()} torch threads"
          + ("" if compiled_sampler() else "\n(no compiled sampler installed: torch rows only; bash scripts/sampler.sh builds one)"))
    speed = {s: [] for s in samplers}
    for r in range(args.rounds):
        for s in samplers: speed[s].append(batches_per_second(data, s, fanouts, args.batch_size, seed=r))
    acc = {s: [] for s in samplers}
    for seed in range(args.seeds):
        for s in samplers: acc[s].append(accuracy(data, s, fanouts, args.batch_size, args.epochs, seed))
    rows = [dict(sampler=s, batches_per_s=st.median(speed[s]), test_acc=st.mean(acc[s]) if acc[s] else None,
                 std=st.stdev(acc[s]) if len(acc[s]) > 1 else 0.0) for s in samplers]
    trained = f"{args.seeds} seeds x {args.epochs} epochs" if args.seeds else "--seeds 0: speed only"
    print(f"\n| sampler | batches / s (median of {args.rounds}) | test acc (%), {trained} |\n|---|---|---|")
    for r in rows:
        acc_cell = "not trained" if r["test_acc"] is None else f"{r['test_acc']:.1f} ± {r['std']:.1f}"
        print(f"| {r['sampler']} | {r['batches_per_s']:.1f} | {acc_cell} |")
    same = same_as_pyg(data, args.batch_size) if len(rows) == 2 else None
    if len(rows) == 2:
        print(f"\ntorch / pyg speed: {rows[0]['batches_per_s'] / rows[1]['batches_per_s']:.2f}; "
              f"with fanouts -1, the same subgraph (seeds first, the same nodes and edges): {'yes' if same else 'NO'}")
    if args.json:
        write_json(args.json, dict(graph=args.graph, batch_size=args.batch_size, fanouts=fanouts, epochs=args.epochs,
                                                   seeds=args.seeds, rounds=args.rounds, same_subgraph_as_pyg=same, rows=rows))


if __name__ == "__main__":
    main()
