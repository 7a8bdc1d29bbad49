"""Explainers side by side on the new-paper neighbourhoods the service classifies: time per explanation and fidelity.

    python benchmarks/explain.py                  # GCN on Cora, 100 test nodes, every explainer
    python benchmarks/explain.py --nodes 20 --explainers saliency ig gnnexplainer

For each test node, every explainer attributes the predicted class to the input features of the node's neighbourhood
(`Predictor.neighbourhood`); `cora_gnn.explain.describe` turns those attributions into the top words and papers and
removes the top 3 of each to see how far the predicted class's probability falls ("drop"), next to the fall without as
many random words and papers ("random drop"). A good explainer has a large drop and a small random drop. Times are
whole explanations (neighbourhood, attributions, ranking, fidelity), p50 and p99 over the nodes after one warm-up.

The explainers: cora_gnn's own gradient x input (`saliency`, the default) and integrated gradients (`ig`, 32 steps,
batched), and PyG's `CaptumExplainer` (Saliency, IntegratedGradients with the same 32 midpoint steps) and
`GNNExplainer`, all on the same log-probabilities. "cosine vs ig" compares each explainer's attributions with
cora_gnn's `ig` (1: the same up to scale). PyG's Captum wrappers need `pip install captum` (in the dev extra).
"""
import argparse
import time
import warnings

import numpy as np
import torch
from torch import nn

from cora_gnn.data import load_dataset
from cora_gnn.explain import attributions, describe
from cora_gnn.hparams import TrainConfig
from cora_gnn.predict import Predictor
from cora_gnn.train import fit
from cora_gnn.files import write_json

EXPLAINERS = ["saliency", "ig", "captum-saliency", "captum-ig", "gnnexplainer"]


class LogProbs(nn.Module):
    "The model's log-probabilities, the quantity every explainer here attributes."
    def __init__(self, model): super().__init__(); self.model = model
    def forward(self, x, edge_index): return self.model(x, edge_index).log_softmax(-1)


def pyg_explainer(name, model, epochs):
    "PyG's `Explainer` for `name`, on feature-level node masks of `model`'s log-probabilities."
    from torch_geometric.explain import Explainer
    from torch_geometric.explain.algorithm import CaptumExplainer, GNNExplainer
    algo = {"captum-saliency": lambda: CaptumExplainer("Saliency"),
            "captum-ig": lambda: CaptumExplainer("IntegratedGradients", n_steps=32, method="riemann_middle"),
            "gnnexplainer": lambda: GNNExplainer(epochs=epochs)}[name]()
    # in eval mode: Explainer puts the model back in the mode it found it in, and a new module is in training mode (dropout)
    return Explainer(LogProbs(model).eval(), algo, explanation_type="phenomenon", node_mask_type="attributes", edge_mask_type=None,
                     model_config=dict(mode="multiclass_classification", task_level="node", return_type="log_probs"))


def attribute(name, pr, g, c, explainers):
    "Attributions of class `c` at `g.target` by explainer `name`."
    if name in ("saliency", "ig"): return attributions(pr.model, g, c, name, 32)
    return explainers[name](g.x, g.edge_index, target=torch.tensor([c] * len(g.x)), index=g.target).node_mask.detach()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="gcn")
    p.add_argument("--nodes", type=int, default=100, help="test nodes explained")
    p.add_argument("--explainers", nargs="+", default=EXPLAINERS, choices=EXPLAINERS)
    p.add_argument("--gnn-epochs", type=int, default=100, help="GNNExplainer's optimisation epochs (PyG's default: 100)")
    p.add_argument("--json", help="also write the table to this JSON file")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    data = load_dataset("Cora")
    pr = Predictor(fit(TrainConfig(args.model, seed=0), data, progress=False).model, data, data.class_names)
    nodes = data.test_mask.nonzero().view(-1)[:args.nodes].tolist()
    explainers = {n: pyg_explainer(n, pr.model, args.gnn_epochs) for n in args.explainers if n not in ("saliency", "ig")}
    graphs = {i: pr.neighbourhood(index=i) for i in nodes}
    classes = {i: int(pr.proba[i].argmax()) for i in nodes}
    ref = {i: attributions(pr.model, graphs[i], classes[i], "ig", 32) for i in nodes} if "ig" in args.explainers else None
    print(f"{args.model} on Cora, {len(nodes)} test nodes, {torch.get_num_threads()} torch threads\n")
    print("| explainer | p50 (ms) | p99 (ms) | drop without top 3 + 3 | random drop | cosine vs ig |\n|---|---|---|---|---|---|")
    rows = []
    for name in args.explainers:
        attribute(name, pr, graphs[nodes[0]], classes[nodes[0]], explainers)  # warm-up
        times, drops, rand, cos = [], [], [], []
        for i in nodes:
            t0 = time.perf_counter()
            g = pr.neighbourhood(index=i)
            a = attribute(name, pr, g, classes[i], explainers)
            e = describe(pr, g, a, name, started=t0)
            times.append(e.seconds * 1e3); drops.append(e.fidelity["drop"]); rand.append(e.fidelity["random_drop"])
            if ref: cos.append(float(nn.functional.cosine_similarity(a.flatten(), ref[i].flatten(), dim=0)))
        if pr.model.training: raise SystemExit(f"{name} left the model in training mode: its numbers and those after it are off")
        row = dict(explainer=name, p50=float(np.percentile(times, 50)), p99=float(np.percentile(times, 99)), drop=float(np.mean(drops)),
                   random_drop=float(np.mean(rand)), cosine_vs_ig=float(np.mean(cos)) if cos else None)
        rows.append(row)
        cosine = "" if row["cosine_vs_ig"] is None else f"{row['cosine_vs_ig']:.3f}"
        print(f"| {name} | {row['p50']:.1f} | {row['p99']:.1f} | {row['drop']:.3f} | {row['random_drop']:.3f} | {cosine} |", flush=True)
    if args.json: write_json(args.json, dict(model=args.model, nodes=len(nodes), rows=rows))


if __name__ == "__main__":
    main()
