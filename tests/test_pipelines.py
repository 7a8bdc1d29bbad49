"Papermill runs of the pipeline notebooks, tracking modes and the run registry, as a user runs them."
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cora_gnn.config import ENV_DATA_MIRROR, ENV_DATA_ROOT
from cora_gnn.tracking import list_runs, promote, promoted_checkpoint, read_offline_run, start_tracking

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = ROOT / "nbs" / "pipelines"


def papermill(nb, out_nb, cwd, env, **params):
    args = [sys.executable, "-m", "papermill", str(PIPELINES / nb), str(out_nb), "--cwd", str(cwd), "-k", "python3"]
    for k, v in params.items():
        if isinstance(v, list): args += ["-y", f"{k}: {json.dumps(v)}"]
        else: args += ["-p", k, str(v)] if not isinstance(v, str) else ["-r", k, v]
    return subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture
def env(mirror, data_dir, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    return {**os.environ, ENV_DATA_MIRROR: str(mirror), ENV_DATA_ROOT: str(data_dir), "HOME": str(home),
            "WANDB_CONFIG_DIR": str(home / ".config" / "wandb"), "WANDB_CACHE_DIR": str(home / ".cache" / "wandb")}


def test_train_pipeline_with_overrides_and_offline_tracking(env, tmp_path):
    out = tmp_path / "runs" / "gat-quick"
    r = papermill("train.ipynb", tmp_path / "train.ipynb", tmp_path, env, model="gat", epochs=40, seed=3, hidden=4,
                  out_dir=str(out), tracking="offline")
    assert r.returncode == 0, r.stderr[-3000:]
    record = json.loads((out / "run.json").read_text())
    assert record["params"]["model"] == "gat" and record["params"]["epochs"] == 40 and record["params"]["hidden"] == 4
    assert record["params"]["seed"] == 3 and record["pipeline"]["tracking"] == "offline"
    assert record["dataset"]["fingerprint"] and record["versions"]["torch_geometric"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 40 and metrics["test_acc"] > 0.5
    for f in ("history", "confusion", "embedding"):
        assert (out / "figures" / f"{f}.png").stat().st_size > 10_000
    # the offline W&B run can be read back: config, every epoch, the summary
    (wandb_run,) = (out / "wandb").glob("offline-run-*")
    back = read_offline_run(wandb_run)
    assert len([h for h in back["history"] if "val_acc" in h]) == 40
    assert back["summary"]["test_acc"] == pytest.approx(metrics["test_acc"])
    executed = json.loads((tmp_path / "train.ipynb").read_text())
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in executed["cells"])


def test_bad_parameter_fails_fast_with_its_message(env, tmp_path):
    r = papermill("train.ipynb", tmp_path / "bad.ipynb", tmp_path, env, model="gcn", lr=-0.01,
                  out_dir=str(tmp_path / "bad"), tracking="disabled")
    assert r.returncode != 0 and "lr must be positive" in r.stderr
    assert not (tmp_path / "bad").exists()
    r = papermill("train.ipynb", tmp_path / "bad2.ipynb", tmp_path, env, model="transformer", out_dir="x")
    assert r.returncode != 0 and "unknown model 'transformer'" in r.stderr


def test_disabled_tracking_writes_only_the_run_directory(env, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    out = work / "runs" / "sgc"
    r = papermill("train.ipynb", tmp_path / "sgc.ipynb", work, env, model="sgc", epochs=20, out_dir=str(out),
                  tracking="disabled")
    assert r.returncode == 0, r.stderr[-3000:]
    assert [p.name for p in work.iterdir()] == ["runs"] and [p.name for p in (work / "runs").iterdir()] == ["sgc"]
    assert not (out / "wandb").exists()
    assert not (Path(env["HOME"]) / ".config" / "wandb").exists()


def test_sweep_pipeline_resumes_and_reports(env, tmp_path):
    out = tmp_path / "sweep"
    r = papermill("sweep.ipynb", tmp_path / "sweep.ipynb", tmp_path, env, model="sgc", n_trials=3, epochs=30,
                  eval_seeds=2, out_dir=str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    rec = json.loads((out / "sweep.json").read_text())
    assert rec["n_trials"] == 3 and set(rec["best_params"]) >= {"lr", "weight_decay", "K"}
    assert set(rec["summary"]) == {"best", "default"}
    r = papermill("sweep.ipynb", tmp_path / "sweep2.ipynb", tmp_path, env, model="sgc", n_trials=4, epochs=30,
                  eval_seeds=2, out_dir=str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((out / "sweep.json").read_text())["n_trials"] == 4


def test_registry_lists_promotes_and_verifies(env, tmp_path):
    exe = Path(sys.executable).parent / "cora-gnn"
    for seed in (0, 1):
        r = subprocess.run([exe, "train", "--model", "sgc", "--epochs", "10", "--seed", str(seed), "--out",
                            tmp_path / "runs" / f"sgc-{seed}"], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
    r = subprocess.run([exe, "promote", "sgc-1", "--root", tmp_path / "runs"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    table = subprocess.run([exe, "runs", "--root", tmp_path / "runs"], capture_output=True, text=True, env=env).stdout
    (line,) = [ln for ln in table.splitlines() if ln.strip().startswith("sgc-1")]
    assert line.rstrip().endswith("*")
    assert promoted_checkpoint(tmp_path / "runs") == tmp_path / "runs" / "sgc-1" / "checkpoint.pt"
    assert list_runs(tmp_path / "runs").seed.tolist() == [0, 1]
    (tmp_path / "runs" / "sgc-0" / "checkpoint.pt").write_bytes(b"not the recorded file")
    with pytest.raises(Exception, match="does not match the SHA-256"):
        promote("sgc-0", tmp_path / "runs")


def test_online_tracking_without_key_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ValueError, match="needs a W&B account"):
        start_tracking("online", tmp_path, {})
