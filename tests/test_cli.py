import json
import re
import subprocess
import sys

import pandas as pd
import pytest

from cora_gnn.checkpoint import load_checkpoint
from cora_gnn.config import ENV_DATA_MIRROR, ENV_DATA_ROOT, ENV_RUNS, ENV_THREADS, SETTINGS
from cora_gnn.models import MODELS

def test_train_writes_a_run_and_prints_its_metrics(invoke, env, tmp_path, cora):
    out = tmp_path / "runs" / "gcn-s0"
    r = invoke("train", "--dataset", "Cora", "--model", "gcn", "--seed", "0", "--epochs", "40", "--out", out, env=env)
    assert r.exit_code == 0, r.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert re.search(rf"^test_acc +{metrics['test_acc']:.4f}$", r.stdout, re.M), r.stdout
    assert re.search(rf"^temperature +{metrics['temperature']:.4f}$", r.stdout, re.M), r.stdout
    assert metrics["epochs"] == 40 and metrics["test_acc"] > 0.6
    assert len(pd.read_csv(out / "history.csv")) == 40
    run = json.loads((out / "run.json").read_text())
    assert run["params"]["model"] == "gcn" and run["params"]["hidden"] == MODELS["gcn"].defaults["hidden"]
    assert run["dataset"]["num_features"] == cora.num_features and run["versions"]["torch"]
    assert load_checkpoint(out / "checkpoint.pt", cora).config.epochs == 40


def test_train_takes_the_papers_settings_for_the_dataset_unless_given(invoke, env, tmp_path):
    for extra, want_k in (([], MODELS["grand"].datasets["CiteSeer"]["K"]), (["--k", "3"], 3)):
        out = tmp_path / f"grand-{want_k}"
        r = invoke("train", "--dataset", "citeseer", "--model", "grand", "--epochs", "2", *extra, "--out", out, env=env)
        assert r.exit_code == 0, r.stderr
        params = json.loads((out / "run.json").read_text())["params"]
        assert params["K"] == want_k and params["samples"] == MODELS["grand"].datasets["CiteSeer"]["samples"]
        assert params["K"] != MODELS["grand"].defaults["K"]  # not Cora's


def test_default_run_directory(invoke, env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = invoke("train", "--model", "sgc", "--epochs", "3", "--seed", "4", env=env)
    assert r.exit_code == 0, r.stderr
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("sgc-cora-s4-") and (run / "checkpoint.pt").is_file()
    r = invoke("train", "--model", "sgc", "--epochs", "3", env={**env, ENV_RUNS: str(tmp_path / "elsewhere")})
    assert r.exit_code == 0, r.stderr
    (run,) = (tmp_path / "elsewhere").iterdir()  # the registry's environment variable holds for the default run directory
    assert run.name.startswith("sgc-cora-s0-")


@pytest.mark.parametrize("args,code,message", [
    (["--model", "gcm"], 2, "unknown model 'gcm': choose one of gcn"),
    (["--lr", "-0.5"], 2, "lr must be positive"),
    (["--model", "gcn", "--heads", "4"], 2, "heads not used by model 'gcn'"),
    (["--dataset", "Corra"], 2, "unknown dataset 'Corra'"),
    (["--dataset", "synthetic-lots"], 2, "write synthetic-<papers>"),
    (["--device", "cuda:7"], 2, "cuda:7"),
])
def test_bad_input_is_one_clear_line(invoke, cli_env, tmp_path, args, code, message):
    "In this process (Typer's runner): each bad value exits with its status and one line on stderr, and writes nothing."
    r = invoke("train", *args, "--out", tmp_path / "x", env=cli_env)
    assert r.exit_code == code and message in r.stderr, (r.exit_code, r.stderr)
    assert isinstance(r.exception, SystemExit) and r.stderr.count("\n") == 1, r.stderr  # no traceback: one line
    assert not (tmp_path / "x").exists()


TYPED = [s for s in SETTINGS.values() if s.type is not str]  # every setting a bad value can break
CASES = [(["train", "--epochs", "1"], ENV_THREADS)] + [(["serve"], s.var) for s in TYPED if s.name != "sampler"]


@pytest.mark.parametrize("command,var", CASES, ids=[f"{c[0]}-{v}" for c, v in CASES])
def test_a_bad_setting_exits_2_naming_the_variable(invoke, cli_env, command, var):
    "CORA_GNN_THREADS=abc (or any typed setting): `train` and `serve` exit 2 with one line that names the variable."
    r = invoke(*command, env={**cli_env, var: "abc"})
    assert r.exit_code == 2 and f"{var} must be" in r.stderr and "'abc'" in r.stderr, (r.exit_code, r.stderr)
    assert isinstance(r.exception, SystemExit) and r.stderr.count("\n") == 1, r.stderr


def test_missing_mirror(invoke, cli_env, tmp_path):
    env = {**cli_env, ENV_DATA_MIRROR: str(tmp_path / "nowhere"), ENV_DATA_ROOT: str(tmp_path / "cache")}
    r = invoke("train", "--epochs", "1", env=env)
    assert r.exit_code == 1 and "could not fetch" in r.stderr and ENV_DATA_MIRROR in r.stderr
    assert isinstance(r.exception, SystemExit) and r.stderr.count("\n") == 1, r.stderr


def test_models_lists_the_zoo(invoke):
    r = invoke("models")
    assert r.exit_code == 0
    for name, spec in MODELS.items():
        assert f"{name:<6} {spec.paper}" in r.stdout
        for d in spec.datasets:  # settings tuned on validation are told from the paper's
            assert (f"on {d} (tuned on validation): " in r.stdout) == (d in spec.tuned), (name, d)
            assert (f"on {d}: " in r.stdout) != (d in spec.tuned), (name, d)
    assert MODELS["grand"].tuned == ("Cora",)


WATCHED = ("sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'optuna', 'wandb', 'tqdm') "
           "or m in ('cora_gnn.train', 'cora_gnn.pipeline', 'cora_gnn.plots', 'torch_geometric.loader'))")


def loaded(stmt:str) -> set:
    "The watched modules (the issue's list: plotting, sweeps, tracking, progress bars, training) a fresh interpreter holds after `stmt`."
    r = subprocess.run([sys.executable, "-c", f"import sys; {stmt}; print({WATCHED})"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return set(eval(r.stdout))


@pytest.mark.slow
def test_serve_imports_no_training_or_plotting_stack():
    # torch itself imports tqdm (torch.hub), and torch_geometric.data imports torch_geometric.loader: the service cannot avoid those
    baseline = loaded("import torch, torch_geometric")
    assert all(m.startswith("tqdm") or m == "torch_geometric.loader" for m in baseline), baseline
    stmt = "import cora_gnn.cli, cora_gnn.server; cora_gnn.server.ServerConfig()"  # the service's imports, and the command's
    assert loaded(stmt) == baseline, stmt
    assert {"matplotlib", "optuna", "cora_gnn.train", "cora_gnn.plots"} <= loaded("import cora_gnn.pipeline")  # the probe sees them
