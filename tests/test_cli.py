import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from cora_gnn.config import ENV_DATA_MIRROR, ENV_DATA_ROOT
from cora_gnn.models import MODELS
from cora_gnn.train import load_checkpoint


def cli(*args, env=None, cwd=None):
    exe = os.path.join(os.path.dirname(sys.executable), "cora-gnn")
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=300, env=env, cwd=cwd)


@pytest.fixture
def env(mirror, data_dir):
    return {**os.environ, ENV_DATA_MIRROR: str(mirror), ENV_DATA_ROOT: str(data_dir)}


def test_train_writes_a_run_and_prints_its_metrics(env, tmp_path, cora):
    out = tmp_path / "runs" / "gcn-s0"
    r = cli("train", "--dataset", "Cora", "--model", "gcn", "--seed", "0", "--epochs", "40", "--out", out, env=env)
    assert r.returncode == 0, r.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"test_acc    {metrics['test_acc']:.4f}" in r.stdout
    assert metrics["epochs"] == 40 and metrics["test_acc"] > 0.6
    assert len(pd.read_csv(out / "history.csv")) == 40
    run = json.loads((out / "run.json").read_text())
    assert run["params"]["model"] == "gcn" and run["params"]["hidden"] == MODELS["gcn"].defaults["hidden"]
    assert run["dataset"]["num_features"] == cora.num_features and run["versions"]["torch"]
    assert load_checkpoint(out / "checkpoint.pt", cora).config.epochs == 40


def test_default_run_directory(env, tmp_path):
    r = cli("train", "--model", "sgc", "--epochs", "3", "--seed", "4", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("sgc-cora-s4-") and (run / "checkpoint.pt").is_file()


@pytest.mark.parametrize("args,code,message", [
    (["--model", "gcm"], 2, "unknown model 'gcm': choose one of gcn"),
    (["--lr", "-0.5"], 2, "lr must be positive"),
    (["--model", "gcn", "--heads", "4"], 2, "heads not used by model 'gcn'"),
    (["--dataset", "Corra"], 1, "unknown dataset 'Corra'"),
    (["--device", "cuda:7"], 2, "cuda:7"),
])
def test_bad_input_is_one_clear_line(env, tmp_path, args, code, message):
    r = cli("train", *args, "--out", tmp_path / "x", env=env)
    assert r.returncode == code and message in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert not (tmp_path / "x").exists()


def test_missing_mirror(tmp_path):
    env = {**os.environ, ENV_DATA_MIRROR: str(tmp_path / "nowhere"), ENV_DATA_ROOT: str(tmp_path / "cache")}
    r = cli("train", "--epochs", "1", env=env)
    assert r.returncode == 1 and "could not fetch" in r.stderr and ENV_DATA_MIRROR in r.stderr
    assert "Traceback" not in r.stderr


def test_models_lists_the_zoo():
    r = cli("models")
    assert r.returncode == 0
    for name, spec in MODELS.items():
        assert f"{name:<6} {spec.paper}" in r.stdout
