"""Inference variants side by side: eager PyTorch, cached propagation, torch.compile, ONNX Runtime and dynamic int8
quantization, for full-graph inference (every node of Cora) and for the new-paper path (one paper and its
neighbourhood, as the service classifies it).

    python benchmarks/inference.py                        # GCN and APPNP, 200 repetitions per variant
    python benchmarks/inference.py --models gcn --reps 50 --variants eager cached onnx

Each variant is checked against eager PyTorch (largest probability difference, share of equal classes) and timed
(median of --reps calls after warm-up, in rounds that visit the variants in turn, so that all of them see the same
machine state); "setup" is the one-off cost (compiling, exporting). A variant that cannot run
says why in its row. ONNX Runtime needs `pip install onnxruntime onnx onnxscript`. Prints a Markdown table.

The variants:
- eager: `inference_copy(model)` under `torch.inference_mode`, which recomputes the normalised adjacency each call;
- cached: the model as trained, whose normalised adjacency (GCN) or propagation input is cached after the first
  call. For full-graph inference only: a new paper changes the graph, so nothing cached about it stays valid;
- k-hop (paper path only): the neighbourhood found with PyG's `k_hop_subgraph` over all edges, as the service did
  before `paper_subgraph`;
- compile: `torch.compile(dynamic=True)` of the eager copy;
- onnx: `torch.onnx.export` (TorchScript exporter, dynamic node and edge counts) run by ONNX Runtime on the CPU;
- int8: `torch.ao.quantization.quantize_dynamic` of the model's `torch.nn.Linear` layers (GCN's `GCNConv` uses PyG's
  own `Linear`, which it leaves in float).
"""
import argparse
import statistics as st
import tempfile
import time
import warnings
from pathlib import Path

import torch

from cora_gnn.data import load_dataset
from cora_gnn.models import inference_copy
from cora_gnn.predict import Predictor, paper_features
from cora_gnn.hparams import TrainConfig
from cora_gnn.train import fit
from cora_gnn.files import write_json

VARIANTS = ["eager", "cached", "k-hop", "compile", "onnx", "int8"]


def timed(f, reps):
    for _ in range(3): f()  # warm-up
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return st.median(times) * 1e3


def k_hop_paper(model, data, words, cites):
    "The new-paper path as before `paper_subgraph`: PyG's `k_hop_subgraph` over every edge plus the paper's."
    from torch_geometric.utils import k_hop_subgraph
    n, c = data.num_nodes, torch.tensor(cites, dtype=torch.long)
    new = torch.full_like(c, n)
    ei = torch.cat([data.edge_index, torch.stack([c, new]), torch.stack([new, c])], 1)
    subset, sub_ei, at, _ = k_hop_subgraph(n, model.hops + 1, ei, relabel_nodes=True, num_nodes=n + 1)
    x = torch.cat([data.x.index_select(0, subset[:-1]), paper_features(data.num_features, words)])
    return model(x, sub_ei)[at]


def build(variant, trained, eager, example):
    "A callable `(x, edge_index) -> logits` for `variant`, and its setup seconds; raises when the variant cannot run."
    t = time.perf_counter()
    if variant == "eager": f = eager
    elif variant == "cached": f = trained
    elif variant == "compile":
        f = torch.compile(eager, dynamic=True)
        with torch.inference_mode(): f(*example)  # compiles here, not in the timing
    elif variant == "onnx":
        import onnxruntime as ort
        path = Path(tempfile.mkdtemp()) / "model.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(eager, example, str(path), input_names=["x", "edge_index"], output_names=["out"],
                              dynamic_axes={"x": {0: "nodes"}, "edge_index": {1: "edges"}, "out": {0: "nodes"}}, dynamo=False)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        def f(x, ei): return torch.from_numpy(sess.run(None, {"x": x.numpy(), "edge_index": ei.numpy()})[0])
    elif variant == "int8":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = torch.ao.quantization.quantize_dynamic(eager, {torch.nn.Linear}, dtype=torch.qint8)
    else: raise ValueError(variant)
    return f, time.perf_counter() - t


def agreement(a, b):
    pa, pb = a.softmax(-1), b.softmax(-1)
    return (pa - pb).abs().max().item(), (pa.argmax(-1) == pb.argmax(-1)).float().mean().item()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["gcn", "appnp"])
    p.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS)
    p.add_argument("--epochs", type=int, help="training epochs (default: the model's own, with early stopping)")
    p.add_argument("--reps", type=int, default=200, help="timed calls per variant (spread over the rounds and inputs)")
    p.add_argument("--rounds", type=int, default=5, help="rounds that time every variant in turn")
    p.add_argument("--json", help="also write the table to this JSON file")
    args = p.parse_args(argv)
    data = load_dataset("Cora")
    print(f"Cora, {torch.get_num_threads()} threads, median of {args.reps} calls\n")
    print("| model | path | variant | ms per call | speed-up | setup (s) | max abs diff of probabilities | same class |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for name in args.models:
        trained = fit(TrainConfig(name, seed=0, epochs=args.epochs), data, progress=False).model.eval()
        eager = inference_copy(trained)
        pr = Predictor(trained, data, data.class_names)
        nodes = data.test_mask.nonzero().view(-1)[:20].tolist()
        papers = list(zip(*pr.graph_inputs(nodes)))  # 20 test nodes sent as new papers: (words, cites)
        paths = {"full graph": ([(data.x, data.edge_index)], lambda g, inp: g(*inp), (data.x, data.edge_index)),
                 "new paper": (papers, lambda g, wc, pr=pr: g(*pr.paper_graph(words=wc[0], cites=wc[1]))[-1:],
                               pr.paper_graph(words=papers[0][0], cites=papers[0][1]))}
        for path, (inputs, run, example) in paths.items():
            with torch.inference_mode(): ref = torch.cat([run(eager, i) for i in inputs])
            fns, found = {}, {}
            for variant in args.variants:
                if (variant == "cached" and path == "new paper") or (variant == "k-hop" and path == "full graph"): continue
                found[variant] = row = dict(model=name, path=path, variant=variant)
                try:
                    if variant == "k-hop": f, setup = (lambda wc, m=eager: k_hop_paper(m, data, *wc)), 0.0
                    else:
                        g, setup = build(variant, trained, eager, example)
                        f = lambda inp, g=g, run=run: run(g, inp)  # noqa: E731
                    with torch.inference_mode(): diff, same = agreement(torch.cat([f(i) for i in inputs]), ref)
                    fns[variant] = f
                    row.update(setup=setup, diff=diff, same=same)
                except Exception as e:  # a variant that cannot run is a finding too
                    row.update(error=f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}")
            # Time in rounds that visit every variant in turn, so that all of them see the same machine state.
            times = {v: [] for v in fns}
            with torch.inference_mode():
                for _ in range(args.rounds):
                    for v, f in fns.items():
                        times[v].append(st.median(timed(lambda f=f, i=i: f(i), max(1, args.reps // args.rounds // len(inputs)))
                                                  for i in inputs))
            base = st.median(times["eager"]) if "eager" in times else None
            for v, row in found.items():
                if v in times:
                    row.update(ms=st.median(times[v]), speedup=base / st.median(times[v]) if base else None)
                    print(f"| {name} | {path} | {v} | {row['ms']:.3f} | {row['speedup']:.2f}x | {row['setup']:.1f} | {row['diff']:.1e} "
                          f"| {row['same']:.1%} |", flush=True)
                else: print(f"| {name} | {path} | {v} | failed: {row['error']} | | | | |", flush=True)
                rows.append(row)
    if args.json: write_json(args.json, rows)


if __name__ == "__main__":
    main()
