"""The label-free accuracy estimate across model seeds. For each seed, train the drift pipeline's default model (GCN,
with its estimator fit on the validation nodes), send the robustness study's unperturbed stream and its five
severity-0.25 streams as new papers, and compare the mean `p_correct` with the realised accuracy (and the mean
calibrated confidence, the estimate without the graph). The accuracies the estimator cannot see are beside it:
the validation accuracy it was fit to, the test accuracy, and the unperturbed stream's own (500 test nodes drawn
with replacement, so about 1.6 points of sampling error).

    python benchmarks/estimate_seeds.py --seeds 0 1 2 3 4 5 6 7 8 9
"""
import argparse

import numpy as np

from cora_gnn.data import load_dataset
from cora_gnn.drift import PERTURBATIONS, stream, with_estimator
from cora_gnn.models import TrainConfig
from cora_gnn.predict import Predictor
from cora_gnn.train import fit


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
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    p.add_argument("--n", type=int, default=500, help="papers per stream")
    p.add_argument("--severity", type=float, default=0.25)
    args = p.parse_args(argv)
    data = load_dataset(args.dataset)
    print(f"{args.dataset}, GCN, {args.n} papers per stream; absolute error of the estimated accuracy (points), mean (worst) "
          f"over the unperturbed stream and the {len(PERTURBATIONS)} streams at severity {args.severity:g}\n")
    print("| seed | val acc | test acc | unperturbed stream acc | p_correct | mean confidence |\n|---|---|---|---|---|---|")
    means, under, gaps = [], 0, []
    for seed in args.seeds:
        result = with_estimator(fit(TrainConfig("gcn", seed=seed), data, progress=False), data)
        pr = Predictor(result.model, data, data.class_names, dict(metrics=result.metrics))
        e = errors(pr, args.n, seed, args.severity)
        means.append((np.mean(e["p_correct"]), np.max(e["p_correct"]), np.mean(e["confidence"]), np.max(e["confidence"])))
        m = result.metrics
        under, gaps = under + e["under"], gaps + [100 * (m["test_acc"] - m["val_acc"])]
        print(f"| {seed} | {100 * m['val_acc']:.1f} | {100 * m['test_acc']:.1f} | {100 * e['stream_acc']:.1f} "
              f"| {means[-1][0]:.1f} ({means[-1][1]:.1f}) | {means[-1][2]:.1f} ({means[-1][3]:.1f}) |", flush=True)
    a = np.array(means)
    print(f"| mean of {len(means)} | | | | {a[:, 0].mean():.1f} ({a[:, 1].mean():.1f}) | {a[:, 2].mean():.1f} ({a[:, 3].mean():.1f}) |")
    print(f"\nseeds whose mean p_correct error is at most 3 points: {int((a[:, 0] <= 3).sum())} of {len(means)}")
    print(f"streams where the estimate is under the realised accuracy: {under} of {len(means) * (1 + len(PERTURBATIONS))}")
    print(f"test accuracy above validation accuracy: {sum(g > 0 for g in gaps)} of {len(gaps)} seeds, by {np.mean(gaps):.1f} points on average")


if __name__ == "__main__":
    main()
