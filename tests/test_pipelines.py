"Papermill runs of the pipeline notebooks, tracking modes and the run registry, as a user runs them."
import json
from pathlib import Path

import pytest
import uvicorn
from conftest import pipeline_checks

from cora_gnn.errors import UsageError
from cora_gnn.runs import list_runs, promote, promoted_checkpoint
from cora_gnn.tracking import read_offline_run, start_tracking


@pytest.mark.slow
def test_train_pipeline_with_overrides_and_offline_tracking(env, tmp_path, papermill):
    out = tmp_path / "runs" / "gat-quick"
    r = papermill("train.ipynb", tmp_path / "train.ipynb", tmp_path, env, model="gat", epochs=40, seed=3, hidden=4,
                  out=str(out), tracking="offline")
    assert r.returncode == 0, r.stderr[-3000:]
    record = json.loads((out / "run.json").read_text())
    assert record["params"]["model"] == "gat" and record["params"]["epochs"] == 40 and record["params"]["hidden"] == 4
    assert record["params"]["seed"] == 3 and record["pipeline"]["tracking"] == "offline"
    assert record["dataset"]["fingerprint"] and record["versions"]["torch_geometric"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 40 and metrics["test_acc"] > 0.5
    for f in ("history", "confusion", "embedding", "reliability"):
        assert (out / "figures" / f"{f}.png").stat().st_size > 10_000
    # the offline W&B run can be read back: config, every epoch, the summary
    (wandb_run,) = (out / "wandb").glob("offline-run-*")
    back = read_offline_run(wandb_run)
    assert len([h for h in back["history"] if "val_acc" in h]) == 40
    assert back["summary"]["test_acc"] == pytest.approx(metrics["test_acc"])
    executed = json.loads((tmp_path / "train.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in executed["cells"])


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


@pytest.mark.slow
def test_sweep_pipeline_resumes_and_reports(env, tmp_path, papermill):
    out = tmp_path / "sweep"
    r = papermill("sweep.ipynb", tmp_path / "sweep.ipynb", tmp_path, env, model="sgc", n_trials=3, epochs=30,
                  eval_seeds=2, out=str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    rec = json.loads((out / "sweep.json").read_text())
    assert rec["n_trials"] == 3 and set(rec["best_params"]) >= {"lr", "weight_decay", "K"}
    assert set(rec["summary"]) == {"best", "default"}
    r = papermill("sweep.ipynb", tmp_path / "sweep2.ipynb", tmp_path, env, model="sgc", n_trials=4, epochs=30,
                  eval_seeds=2, out=str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((out / "sweep.json").read_text())["n_trials"] == 4


def test_registry_lists_promotes_and_verifies(env, tmp_path, invoke, monkeypatch):
    "In this process (Typer's runner): runs trained, one promoted and marked, a checkpoint changed since refused by promote and serve."
    monkeypatch.setattr(uvicorn.Server, "run", lambda *a, **k: pytest.fail("serve started on a checkpoint it had to refuse"))
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
    r = invoke("serve", "--runs", runs, env=env)
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
