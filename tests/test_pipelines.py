"Papermill runs of the pipeline notebooks, tracking modes and the run registry, as a user runs them."
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import pipeline_checks

from cora_gnn.errors import UsageError
from cora_gnn.hparams import HPARAMS, models_taking
from cora_gnn.config import ENV_DATA_MIRROR, ENV_DATA_ROOT
from cora_gnn.data import load_dataset
from cora_gnn.drift import PERTURBATIONS
from cora_gnn.pipeline import INTERVAL_SEEDS, compare_with_defaults, drift_run, planetoid_run, run_sweep, scaling_run
from cora_gnn.pipeline import summarize_sweep, trials_table
from cora_gnn.plots import plot_accuracy_time, plot_sweep
from cora_gnn.runs import list_runs, promote, promoted_checkpoint
from cora_gnn.tracking import start_tracking


@pytest.mark.slow
def test_bad_parameter_fails_the_papermill_run_with_its_message(env, tmp_path, papermill):
    r = papermill("train.ipynb", tmp_path / "bad.ipynb", tmp_path, env, model="gcn", lr=-0.01,
                  out=str(tmp_path / "bad"), tracking="disabled")
    assert r.returncode != 0 and "lr must be positive" in r.stderr
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("nb, params, message", [
    ("train.ipynb", dict(model="transformer", out="x"), "unknown model 'transformer'"),
    ("train.ipynb", dict(model="sgc", heads=4), "heads"),
    ("planetoid.ipynb", dict(datasets=["Cora"], models=["gcm"], seeds=2), "unknown model 'gcm'"),
    ("planetoid.ipynb", dict(datasets=["Coraa"], seeds=2), "unknown dataset 'Coraa'"),
])
def test_pipelines_check_their_parameters_before_any_work(nb, params, message):
    "The code cell after the parameters cell refuses a bad value with its message (in this process: no papermill run)."
    exc, shown = pipeline_checks(nb, **params)
    assert isinstance(exc, UsageError) and message in str(exc) and message in shown, (exc, shown)


def test_a_sweep_resumes_and_compares_its_best_setting_with_the_defaults(tmp_path, mirror, data_dir):
    """In this process, at a tiny size (the site build runs the pipeline): a second search into the same folder adds
    trials to the first one's study, then what the page shows after the search."""
    kw = dict(n_trials=2, epochs=5, data_root=data_dir, mirror=mirror)
    first = run_sweep("sgc", tmp_path, **kw)
    assert len(first.trials) == 2 and set(first.best_params) == {n for n, h in HPARAMS.items() if h.sweep and "sgc" in models_taking(n)}
    study = run_sweep("sgc", tmp_path, **{**kw, "n_trials": 3})
    assert len(study.trials) == 3
    for kept, before in zip(study.trials, first.trials): assert kept.params == pytest.approx(before.params)  # stored, not redone
    per_seed = compare_with_defaults(study, load_dataset("Cora", root=data_dir, mirror=mirror), seeds=range(2), epochs=5)
    summary = summarize_sweep(study, per_seed, tmp_path)
    rec = json.loads((tmp_path / "sweep.json").read_text())
    assert rec["n_trials"] == 3 and set(rec["summary"]) == {"best", "default"} and len(summary) == 2
    assert len(trials_table(study, 1)) == 1 and set(plot_sweep(study)) == {"history", "importance"}


def test_registry_lists_promotes_and_verifies(env, tmp_path, invoke, refuse):
    "In this process (Typer's runner): runs trained, one promoted and marked, a checkpoint changed since refused by promote and serve."
    runs = tmp_path / "runs"
    for seed in (0, 1):
        r = invoke("train", "--model", "sgc", "--epochs", "10", "--seed", seed, "--out", runs / f"sgc-{seed}", env=env)
        assert r.exit_code == 0, r.stderr
    r = invoke("promote", "sgc-1", "--runs", runs, env=env)
    assert r.exit_code == 0, r.stderr
    table = invoke("runs", "--runs", runs, env=env).stdout
    (line,) = [ln for ln in table.splitlines() if ln.strip().startswith("sgc-1")]
    assert line.rstrip().endswith("*")
    assert promoted_checkpoint(runs) == runs / "sgc-1" / "checkpoint.pt"
    assert list_runs(runs).seed.tolist() == [0, 1]
    (runs / "sgc-0" / "checkpoint.pt").write_bytes(b"not the recorded file")
    with pytest.raises(Exception, match="does not match the SHA-256"):
        promote("sgc-0", runs)
    # a run retrained into the promoted directory is not served until it is promoted again
    r = invoke("train", "--model", "sgc", "--epochs", "12", "--seed", 1, "--out", runs / "sgc-1", env=env)
    assert r.exit_code == 0, r.stderr
    r = refuse("serve", "--runs", runs, env=env)
    assert r.exit_code == 1 and "changed after it was promoted" in r.stderr and "cora-gnn promote sgc-1" in r.stderr


@pytest.mark.slow
def test_cli_and_pipeline_write_the_same_run_directory(env, tmp_path, cli, papermill):
    """One writer: a run from `cora-gnn train` and one from the training pipeline hold the same files (figures aside) and
    run.json keys. The pipeline's run, with tracking disabled, writes its run directory and nothing else; and GRAND's
    knobs, which the pipeline once could not set, reach it."""
    knobs = dict(consistency=1.5, dropnode=0.4, temperature=0.3, samples=2, K=2)
    work = tmp_path / "work"
    work.mkdir()
    runs = {"cli": tmp_path / "cli-run", "pipeline": work / "runs" / "grand"}
    r = cli("train", "--model", "grand", "--epochs", "3", "--out", runs["cli"], env=env)
    assert r.returncode == 0, r.stderr
    r = papermill("train.ipynb", tmp_path / "train.ipynb", work, env, model="grand", epochs=3, out=str(runs["pipeline"]),
                  tracking="disabled", **knobs)
    assert r.returncode == 0, r.stderr[-3000:]
    assert [p.name for p in work.iterdir()] == ["runs"] and [p.name for p in (work / "runs").iterdir()] == ["grand"]
    assert not (Path(env["HOME"]) / ".config" / "wandb").exists()
    files = {k: sorted(p.name for p in run.iterdir() if p.name != "figures") for k, run in runs.items()}
    assert files["cli"] == files["pipeline"] == ["checkpoint.pt", "history.csv", "metrics.json", "run.json"]  # no wandb/
    records = {k: json.loads((run / "run.json").read_text()) for k, run in runs.items()}
    assert records["cli"].keys() == records["pipeline"].keys()
    assert (records["cli"]["source"], records["pipeline"]["source"]) == ("cli", "pipeline")
    assert records["cli"]["pipeline"] is None and records["pipeline"]["pipeline"]["epochs"] == 3
    params = records["pipeline"]["params"]
    assert {k: params[k] for k in knobs} == knobs


def test_online_tracking_without_key_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ValueError, match="needs a W&B account"):
        start_tracking("online", tmp_path, {})


@pytest.mark.slow  # each size is measured in a process of its own (its peak memory)
def test_the_scaling_run_writes_its_table_and_figure(tmp_path):
    "In this process, at a tiny size (the site build runs the scaling pipeline in a kernel, whose coverage a kill can lose)."
    run = scaling_run([2_000], epochs=1, batch_size=256, out_dir=tmp_path, progress=False)
    rows = json.loads((tmp_path / "scaling.json").read_text())
    assert [r["nodes"] for r in rows] == run["table"].nodes.tolist() == [2_000] and rows[0]["epoch_s"] > 0
    assert (tmp_path / "scaling.png").stat().st_size > 5_000 and (tmp_path / "scaling.csv").is_file()


def test_the_planetoid_run_writes_its_table_with_intervals(tmp_path, mirror, data_dir, monkeypatch):
    "In this process: SGC on Cora over the fewest seeds that give an interval, which lies within 0-100%."
    monkeypatch.setenv(ENV_DATA_MIRROR, str(mirror)); monkeypatch.setenv(ENV_DATA_ROOT, str(data_dir))
    table = planetoid_run(["Cora"], ["sgc"], seeds=INTERVAL_SEEDS, epochs=5, out_dir=tmp_path, threads=None)
    (row,) = json.loads((tmp_path / "planetoid.json").read_text())["rows"]
    assert row["seeds"] == INTERVAL_SEEDS and 0 <= row["ci95_low"] <= row["test_acc"] <= row["ci95_high"] <= 100
    assert len(pd.read_csv(tmp_path / "runs.csv")) == INTERVAL_SEEDS and plot_accuracy_time(table).axes[0].has_data()


def test_the_drift_run_reports_simulated_traffic_and_robustness(tmp_path, registry):
    "In this process, at a tiny size: the drift pipeline's run on the registry's GCN (the site build runs the notebook)."
    p = dict(checkpoint=str(registry[1] / "gcn" / "checkpoint.pt"), last=1000, n_requests=60, robust_n=20,
             severities=[0.0, 1.0], seed=0, drift_dir=str(tmp_path / "drift"))
    run = drift_run(p)
    m = json.loads((tmp_path / "drift" / "drift.json").read_text())
    assert m["simulated"] and m["rows"]["current"] == 60 and m["run_id"] == "gcn"
    assert {(r["kind"], r["severity"]) for r in m["robustness"]} == {(k, s) for k in PERTURBATIONS for s in (0.0, 1.0)}
    assert set(run["figures"]) == {"features", "robustness", "estimate"} and (tmp_path / "drift" / "report.html").is_file()
