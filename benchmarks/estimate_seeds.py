"""The label-free accuracy estimate across model seeds. For each seed, train the drift pipeline's default model (GCN,
with its estimator fit on the validation nodes), send the robustness study's unperturbed stream and its five
severity-0.25 streams as new papers, and compare the mean `p_correct` with the realised accuracy (and the mean
calibrated confidence, the estimate without the graph). The accuracies the estimator cannot see are beside it:
the validation accuracy it was fit to, the test accuracy, and the unperturbed stream's own (500 test nodes drawn
with replacement, so about 1.6 points of sampling error).

    python benchmarks/estimate_seeds.py --seeds 10     # seeds 0-9, as every benchmark counts them
"""
import argparse

import numpy as np

from cora_gnn.data import load_dataset
from cora_gnn.drift import PERTURBATIONS, stream
from cora_gnn.scores import with_estimator
from cora_gnn.hparams import TrainConfig
from cora_gnn.predict import Predictor
from cora_gnn.train import fit
from cora_gnn.files import write_json


def errors(pr:Predictor, n:int, seed:int, severity:float) -> dict:
    "The estimate's and the confidence's absolute errors (points) on the unperturbed stream and every perturbation at `severity`."
    acc, est = [], {"p_correct": [], "confidence": []}  # per stream, the unperturbed one first
    for kind, sev in [(None, 0.0), *((k, severity) for k in PERTURBATIONS)]:
        words, cites, y = stream(pr, n, kind, sev, seed)
        preds = [pr.predict_paper(words=w, cites=c) for w, c in zip(words, cites)]
        acc.append(np.mean([p["class_id"] == t for p, t in zip(preds, y)]))
        for k, v in est.items(): v.append(np.mean([p[k] for p in preds]))
    acc = np.array(acc)
    return dict(stream_acc=acc[0], under=int((np.array(est["p_correct"]) < acc).sum()),
                **{k: 100 * np.abs(np.array(v) - acc) for k, v in est.items()})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="Cora")
    p.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1")
    p.add_argument("--n", type=int, default=500, help="papers per stream")
    p.add_argument("--severity", type=float, default=0.25)
    p.add_argument("--json", help="also write the table to this JSON file")
    args = p.parse_args(argv)
    data = load_dataset(args.dataset)
    print(f"{args.dataset}, GCN, {args.n} papers per stream; absolute error of the estimated accuracy (points), mean (worst) "
          f"over the unperturbed stream and the {len(PERTURBATIONS)} streams at severity {args.severity:g}\n")
    print("| seed | val acc | test acc | unperturbed stream acc | p_correct | mean confidence |\n|---|---|---|---|---|---|")
    means, under, gaps, rows = [], 0, [], []
    for seed in range(args.seeds):
        result = with_estimator(fit(TrainConfig("gcn", seed=seed), data, progress=False), data)
        pr = Predictor(result.model, data, data.class_names, dict(metrics=result.metrics))
        e = errors(pr, args.n, seed, args.severity)
        means.append((np.mean(e["p_correct"]), np.max(e["p_correct"]), np.mean(e["confidence"]), np.max(e["confidence"])))
        m = result.metrics
        under, gaps = under + e["under"], gaps + [100 * (m["test_acc"] - m["val_acc"])]
        rows.append(dict(seed=seed, val_acc=100 * m["val_acc"], test_acc=100 * m["test_acc"], stream_acc=100 * e["stream_acc"],
                         p_correct_error=means[-1][:2], confidence_error=means[-1][2:]))
        print(f"| {seed} | {100 * m['val_acc']:.1f} | {100 * m['test_acc']:.1f} | {100 * e['stream_acc']:.1f} "
              f"| {means[-1][0]:.1f} ({means[-1][1]:.1f}) | {means[-1][2]:.1f} ({means[-1][3]:.1f}) |", flush=True)
    a = np.array(means)
    print(f"| mean of {len(means)} | | | | {a[:, 0].mean():.1f} ({a[:, 1].mean():.1f}) | {a[:, 2].mean():.1f} ({a[:, 3].mean():.1f}) |")
    print(f"\nseeds whose mean p_correct error is at most 3 points: {int((a[:, 0] <= 3).sum())} of {len(means)}")
    print(f"streams where the estimate is under the realised accuracy: {under} of {len(means) * (1 + len(PERTURBATIONS))}")
    print(f"test accuracy above validation accuracy: {sum(g > 0 for g in gaps)} of {len(gaps)} seeds, by {np.mean(gaps):.1f} points on average")
    if args.json: write_json(args.json, dict(dataset=args.dataset, n=args.n, severity=args.severity, rows=rows, under=under,
                                             streams=len(means) * (1 + len(PERTURBATIONS))))


if __name__ == "__main__":
    main()
