"The benchmark suite runs end to end with small sizes (a smoke test: it checks what the suite reports, never how fast)."
import json
import subprocess
import sys

import pytest
from conftest import ROOT, benchmark as _load

from cora_gnn.models import build_model
from cora_gnn.sampling import compiled_sampler


@pytest.mark.slow
def test_suite_smoke(bench_env, tmp_path):
    "benchmarks/suite.py at its smallest sizes: every stage runs and reports its rows (a smoke test: never how fast)."
    # left out: the sampler stage (test_sampler_benchmark runs it at the same size, in this process), speed.py (run by
    # test_speed_benchmark_pits_gcnii_against_pygs_example_of_the_same_shape and the site build) and serve_load.py (run by the
    # site build at the suite's smoke size: test_site.py checks it); each of those tests checks its summary rows
    r = subprocess.run([sys.executable, "benchmarks/suite.py", "--smoke", "--skip", "sampler", "speed", "serve_load", "--out", str(tmp_path)], cwd=ROOT, env=bench_env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = r.stdout.split("== summary", 1)[1]
    for row in ["gcn test accuracy, 2 seeds", "gcn full graph inference, cached",
                "gcn new paper inference, k-hop", "appnp new paper inference, onnx", "gcn 10 epochs, fastest thread setting",
                "gcn explanation, saliency (10 nodes)", "gcn explanation, gnnexplainer (10 nodes)"]:
        assert f"| {row}" in summary, row
    assert "gcn new paper inference, cached" not in summary  # nothing cached survives a new paper: no such row
    assert "failed" not in summary and "neighbour sampler" not in summary and "PyG example" not in summary and "/api/v1" not in summary, summary
    inference = json.loads((tmp_path / "inference.json").read_text())
    assert {(r["model"], r["path"]) for r in inference} == {(m, p) for m in ("gcn", "appnp") for p in ("full graph", "new paper")}
    # every variant agrees with eager PyTorch on the class of nearly every node (int8 changes APPNP's a little)
    assert all(r["same"] >= 0.9 for r in inference), [(r["variant"], r["same"]) for r in inference]
    explain = {r["explainer"]: r for r in json.loads((tmp_path / "explain.json").read_text())["rows"]}
    assert explain["captum-ig"]["cosine_vs_ig"] > 0.99, explain  # cora_gnn's batched integrated gradients are Captum's
    assert all(explain[m]["drop"] > explain[m]["random_drop"] for m in ("saliency", "ig")), explain


@pytest.mark.slow
def test_service_ops_benchmark_runs(bench_env, tmp_path):
    "benchmarks/service_ops.py at smoke size: both tables, every row answered without errors, a drift job under way."
    out = tmp_path / "ops.json"
    r = subprocess.run([sys.executable, "benchmarks/service_ops.py", "--duration", "3", "--json", str(out)], cwd=ROOT, env=bench_env,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert [d["case"] for d in res["drift"]] == ["no drift job", "a busy loop at the job's priority", "drift jobs running back to back"]
    assert [(b["log"], b["workers"]) for b in res["backends"]] == [("SQLite", 1), ("SQLite", 2), ("PostgreSQL", 1), ("PostgreSQL", 2)]
    assert all(row["errors"] == 0 and row["rps"] > 0 for row in res["drift"] + res["backends"])
    assert "p99 during drift jobs / p99 without" in r.stdout


@pytest.mark.slow
def test_wal_benchmark_runs(bench_env, registry, tmp_path):
    "benchmarks/wal.py at smoke size: the size table and the summary row, every request answered, rows logged."
    out = tmp_path / "wal.json"
    r = subprocess.run([sys.executable, "benchmarks/wal.py", "--duration", "4", "--every", "2", "--json", str(out),
                        "--checkpoint", str(registry[1] / "gcn" / "checkpoint.pt")], cwd=ROOT, env=bench_env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (row,) = json.loads(out.read_text())["rows"]
    assert row["errors"] == 0 and row["rows"] > 0 and len(row["mb"]) >= 3, row
    assert "| 2 | " in r.stdout and "| this checkout | " in r.stdout


@pytest.mark.slow
def test_ood_scores_benchmark(bench_env):
    "benchmarks/ood_scores.py at smoke size: a row per perturbation, an AUROC per score, and the served score sees rewired citations."
    r = subprocess.run([sys.executable, "benchmarks/ood_scores.py", "--n", "40", "--severities", "1"], cwd=ROOT, env=bench_env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = {line.split(" | ")[0].strip("| "): [float(v) for v in line.strip(" |").split(" | ")[2:]]
            for line in r.stdout.splitlines() if line.startswith("| ") and "perturbation" not in line}
    assert set(rows) == {"words_removed", "words_added", "cites_removed", "cites_rewired", "class_shift"}, r.stdout
    assert all(len(v) == 5 and all(0 <= a <= 1 for a in v) for v in rows.values()), rows  # four scores, then the unchanged share
    assert rows["cites_rewired"][4] < 0.1, rows  # at severity 1 hardly a paper keeps its citations
    assert rows["cites_rewired"][3] > 0.75, rows  # ood 0.25, the served score: every citation rewired stands out


@pytest.mark.slow
def test_estimate_seeds_benchmark(bench_env):
    "benchmarks/estimate_seeds.py at smoke size: a row per seed and their mean, errors that are errors, the counts over every stream."
    r = subprocess.run([sys.executable, "benchmarks/estimate_seeds.py", "--seeds", "2", "--n", "40"], cwd=ROOT, env=bench_env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = [line.strip("| ").split(" | ") for line in r.stdout.splitlines() if line.startswith("| ") and "seed" not in line]
    assert [row[0] for row in rows] == ["0", "1", "mean of 2"], r.stdout
    for _, val, test, acc, est, conf in rows[:2]:
        assert 70 < float(val) <= 100 and 70 < float(test) <= 100 and 0 <= float(acc) <= 100, r.stdout  # a trained GCN, far above chance
        for cell in (est, conf):
            mean, worst = map(float, cell.replace("(", "").replace(")", "").split())
            assert 0 <= mean <= worst <= 100, cell
    assert "streams where the estimate is under the realised accuracy:" in r.stdout and " of 12" in r.stdout, r.stdout


@pytest.mark.slow
def test_validation_grid_benchmark(bench_env, tmp_path):
    "benchmarks/validation_grid.py at smoke size: a row per setting, sorted by validation accuracy, and a bad setting refused before any run."
    cmd = [sys.executable, "benchmarks/validation_grid.py", "--model", "sgc", "--seeds", "2", "--settings", "{}", '{"weight_decay": 0.05}']
    r = subprocess.run(cmd, cwd=ROOT, env=bench_env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rows = [line.split("|") for line in r.stdout.splitlines() if line.startswith("| `")]
    assert sorted(row[1].strip() for row in rows) == ['`{"weight_decay": 0.05}`', "`{}`"]
    vals = [float(row[2].split("±")[0]) for row in rows]
    assert vals == sorted(vals, reverse=True) and all(0 < v <= 100 for v in vals)
    bad = subprocess.run([*cmd[:-2], '{"heads": 4}'], cwd=ROOT, env=bench_env, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "heads not used by model 'sgc'" in bad.stderr


@pytest.mark.slow
def test_speed_benchmark_pits_gcnii_against_pygs_example_of_the_same_shape(bench_env, tmp_path):
    "benchmarks/speed.py --models gcnii at smoke size: both implementations timed, and the example has the zoo's GCNII's weights."
    out = tmp_path / "speed.json"
    r = subprocess.run([sys.executable, "benchmarks/speed.py", "--models", "gcnii", "--seeds", "1", "--epochs", "2", "--json", str(out)],
                       cwd=ROOT, env=bench_env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads(out.read_text())
    rows = res["rows"]
    assert [(row["model"], row["implementation"]) for row in rows] == [("gcnii", "PyG example"), ("gcnii", "cora_gnn fit")]
    assert "gcnii fit time / PyG example (2 epochs)" in dict(_load("suite").summary({"speed": res}))  # the suite's row
    speed = _load("speed")
    shapes = lambda m: sorted((n, tuple(p.shape)) for n, p in m.named_parameters())
    assert shapes(speed.ExampleGCNII(20, 5)) == shapes(build_model("gcnii", 20, 5))


def test_sampler_benchmark(tmp_path, capsys):
    "benchmarks/sampler.py at smoke size, in this process: a row per installed sampler, each trained far above chance (7 classes)."
    out = tmp_path / "sampler.json"
    suite = _load("suite")
    _load("sampler").main([*map(str, suite.SIZES["sampler"][2]), "--json", str(out)])  # the suite's smoke size
    res = json.loads(out.read_text())
    rows = res["rows"]
    assert "torch neighbour sampler (synthetic-5k, batches of 256)" in dict(suite.summary({"sampler": res}))  # the suite's row
    assert [r["sampler"] for r in rows] == (["torch", "pyg"] if compiled_sampler() else ["torch"])
    assert all(r["batches_per_s"] > 0 and 30 < r["test_acc"] <= 100 for r in rows), rows
    assert "| torch |" in capsys.readouterr().out


def test_every_benchmark_is_listed_by_the_suite_and_takes_json():
    "Each script of benchmarks/ is named in suite.py's list, and takes --json (the same flag everywhere)."
    doc = _load("suite").__doc__
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        if path.stem == "suite": continue
        assert f"\n  {path.name} " in doc, f"{path.name} is missing from suite.py's list"
        assert 'add_argument("--json"' in path.read_text(), f"{path.name} takes no --json"
