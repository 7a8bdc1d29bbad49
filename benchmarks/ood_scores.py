"""Out-of-distribution scores side by side: for each perturbed stream of new papers, the AUROC of telling it from an
unperturbed stream by each score (0.5 is chance). The service's `ood` is `cora_gnn.predict.citation_ood` with a
random share of 0.25; this is the comparison it was chosen on, and how to check it on models and streams it was not.

    python benchmarks/ood_scores.py                                    # Cora, GCN seed 0, 500 papers per stream
    python benchmarks/ood_scores.py --seed 2 --dataset CiteSeer --model gat

Scores of a new paper, from its words and citations (`p_w`: the calibrated class probabilities of its words alone):
- energy: minus the logsumexp of its calibrated logits, citations included (Liu et al. 2020);
- max surprise: the largest 1 - p_w(class of a cited paper), the service's score before;
- ood 0.5, ood 0.25: `citation_ood` with a share of 0.5 or 0.25 of random citations (the sigmoid of their
  log-likelihood ratio against none).
The model is trained with `--seed`, the perturbed streams use `--seed`, the unperturbed one `--seed` + 1 (as in
`cora_gnn.drift.robustness`). The last column, the share of a stream's papers the perturbation left as they were, is
a ceiling on what any per-paper score can tell apart.
"""
import argparse

import numpy as np
import torch

from cora_gnn.data import load_dataset
from cora_gnn.drift import PERTURBATIONS, auroc, stream
from cora_gnn.models import MODELS
from cora_gnn.hparams import TrainConfig
from cora_gnn.predict import Predictor, citation_ood
from cora_gnn.train import fit
from cora_gnn.files import write_json


def scores(pr:Predictor, words:list, cites:list) -> dict:
    "Every candidate score of one new paper, from one forward pass as the service makes it."
    g = pr.neighbourhood(words=words, cites=cites, unlinked=True)
    with torch.inference_mode(): logits, words_logits = pr.model(g.x, g.edge_index)[-2:] / pr.temperature
    pw, c = words_logits.softmax(-1).numpy(), np.array(cites, dtype=int)
    ood = lambda share: float(citation_ood(pw[None], pr.classes, pr.links, pr.prior, c, np.zeros_like(c), 1, share)[0])
    return {"energy": -float(logits.logsumexp(-1)), "max surprise": float(1 - pw[pr.classes[c]].min()) if len(c) else 0.0,
            "ood 0.5": ood(0.5), "ood 0.25": ood(0.25)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="Cora")
    p.add_argument("--model", default="gcn", choices=list(MODELS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n", type=int, default=500, help="papers per stream")
    p.add_argument("--severities", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    p.add_argument("--json", help="also write the table to this JSON file")
    args = p.parse_args(argv)
    data = load_dataset(args.dataset)
    result = fit(TrainConfig(args.model, seed=args.seed), data, progress=False)
    pr = Predictor(result.model, data, data.class_names, dict(metrics=result.metrics))
    print(f"{args.dataset}, {args.model} seed {args.seed} (test accuracy {result.metrics['test_acc']:.3f}), {args.n} papers per stream\n")
    clean = [scores(pr, w, c) for w, c in zip(*stream(pr, args.n, None, 0.0, args.seed + 1)[:2])]
    names = list(clean[0])
    print("| perturbation | severity | " + " | ".join(names) + " | unchanged |\n|---|---|" + "---|" * (len(names) + 1))
    words, cites, _ = stream(pr, args.n, None, 0.0, args.seed)  # the same papers, unperturbed
    rows = []
    for kind in PERTURBATIONS:
        for sev in args.severities:
            w2, c2, _ = stream(pr, args.n, kind, sev, args.seed)
            got = [scores(pr, w, c) for w, c in zip(w2, c2)]
            row = [auroc([s[k] for s in clean], [s[k] for s in got]) for k in names]
            same = sum(a == b and c == d for a, b, c, d in zip(words, w2, cites, c2)) / args.n
            print(f"| {kind} | {sev:g} | " + " | ".join(f"{a:.3f}" for a in row) + f" | {same:.2f} |", flush=True)
            rows.append(dict(perturbation=kind, severity=sev, auroc=dict(zip(names, row)), unchanged=same))
    if args.json: write_json(args.json, dict(dataset=args.dataset, model=args.model, seed=args.seed, n=args.n, rows=rows))


if __name__ == "__main__":
    main()
