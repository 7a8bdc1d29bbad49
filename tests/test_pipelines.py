"Papermill runs of the pipeline notebooks, tracking modes and the run registry, as a user runs them."
import json
from pathlib import Path

import pytest
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
def test_train_pipeline_sets_a_models_own_knobs(env, tmp_path, papermill):
    "GRAND's knobs, which the command line and the pipeline once could not set, reach the run."
    knobs = dict(consistency=1.5, dropnode=0.4, temperature=0.3, samples=2, K=2)
    r = papermill("train.ipynb", tmp_path / "grand.ipynb", tmp_path, env, model="grand", epochs=3, out=str(tmp_path / "grand"),
                  tracking="disabled", **knobs)
    assert r.returncode == 0, r.stderr[-3000:]
    params = json.loads((tmp_path / "grand" / "run.json").read_text())["params"]
    assert {k: params[k] for k in knobs} == knobs


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
def test_disabled_tracking_writes_only_the_run_directory(env, tmp_path, papermill):
    work = tmp_path / "work"
    work.mkdir()
    out = work / "runs" / "sgc"
    r = papermill("train.ipynb", tmp_path / "sgc.ipynb", work, env, model="sgc", epochs=20, out=str(out),
                  tracking="disabled")
    assert r.returncode == 0, r.stderr[-3000:]
    assert [p.name for p in work.iterdir()] == ["runs"] and [p.name for p in (work / "runs").iterdir()] == ["sgc"]
    assert not (out / "wandb").exists()
    assert not (Path(env["HOME"]) / ".config" / "wandb").exists()


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


@pytest.mark.slow
def test_registry_lists_promotes_and_verifies(env, tmp_path, cli):
    for seed in (0, 1):
        r = cli("train", "--model", "sgc", "--epochs", "10", "--seed", seed, "--out", tmp_path / "runs" / f"sgc-{seed}", env=env)
        assert r.returncode == 0, r.stderr
    r = cli("promote", "sgc-1", "--runs", tmp_path / "runs", env=env)
    assert r.returncode == 0, r.stderr
    table = cli("runs", "--runs", tmp_path / "runs", env=env).stdout
    (line,) = [ln for ln in table.splitlines() if ln.strip().startswith("sgc-1")]
    assert line.rstrip().endswith("*")
    assert promoted_checkpoint(tmp_path / "runs") == tmp_path / "runs" / "sgc-1" / "checkpoint.pt"
    assert list_runs(tmp_path / "runs").seed.tolist() == [0, 1]
    (tmp_path / "runs" / "sgc-0" / "checkpoint.pt").write_bytes(b"not the recorded file")
    with pytest.raises(Exception, match="does not match the SHA-256"):
        promote("sgc-0", tmp_path / "runs")
    # a run retrained into the promoted directory is not served until it is promoted again
    r = cli("train", "--model", "sgc", "--epochs", "12", "--seed", 1, "--out", tmp_path / "runs" / "sgc-1", env=env)
    assert r.returncode == 0, r.stderr
    r = cli("serve", "--runs", tmp_path / "runs", env=env, timeout=120)
    assert r.returncode == 1 and "changed after it was promoted" in r.stderr and "cora-gnn promote sgc-1" in r.stderr


@pytest.mark.slow
def test_cli_and_pipeline_write_the_same_run_directory(env, tmp_path, cli, papermill):
    "One writer: a run from `cora-gnn train` and one from the training pipeline hold the same files (figures aside) and run.json keys."
    r = cli("train", "--model", "sgc", "--epochs", "5", "--out", tmp_path / "cli-run", env=env)
    assert r.returncode == 0, r.stderr
    r = papermill("train.ipynb", tmp_path / "train.ipynb", tmp_path, env, model="sgc", epochs=5, out=str(tmp_path / "pipeline-run"),
                  tracking="disabled")
    assert r.returncode == 0, r.stderr[-3000:]
    files = {name: sorted(p.name for p in (tmp_path / name).iterdir() if p.name != "figures") for name in ("cli-run", "pipeline-run")}
    assert files["cli-run"] == files["pipeline-run"] == ["checkpoint.pt", "history.csv", "metrics.json", "run.json"]
    records = {name: json.loads((tmp_path / name / "run.json").read_text()) for name in ("cli-run", "pipeline-run")}
    assert records["cli-run"].keys() == records["pipeline-run"].keys()
    assert (records["cli-run"]["source"], records["pipeline-run"]["source"]) == ("cli", "pipeline")
    assert records["cli-run"]["pipeline"] is None and records["pipeline-run"]["pipeline"]["epochs"] == 5


def test_online_tracking_without_key_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ValueError, match="needs a W&B account"):
        start_tracking("online", tmp_path, {})
