"Scaling past Cora: distributed data-parallel training under torchrun (gloo, 2 processes), mini-batch runs on synthetic graphs, the scaling pipeline."
import json
import statistics
import subprocess

import pytest
from conftest import BIN, EXE

from cora_gnn.checkpoint import load_checkpoint
from cora_gnn.data import load_graph
from cora_gnn.hparams import TrainConfig
from cora_gnn.predict import Predictor
from cora_gnn.train import fit, predict_proba

pytestmark = pytest.mark.slow  # every test here starts a process (server, subprocess or papermill)

SEEDS = range(3)


def torchrun(*args, env):
    "`torchrun --nproc_per_node=2 $(command -v cora-gnn) ARGS`, as the README gives it."
    cmd = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", str(EXE), *map(str, args)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return r


def test_torchrun_matches_single_process_accuracy_on_cora(cli_env, tmp_path, cora):
    ddp, single = [], []
    for s in SEEDS:
        out = tmp_path / f"ddp-s{s}"
        r = torchrun("train", "--model", "sage", "--seed", s, "--out", out, env=cli_env)
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["processes"] == 2
        assert r.stdout.count("test_acc") == 1  # rank 0 alone reports (and writes) the run
        assert json.loads((out / "run.json").read_text())["params"]["model"] == "sage"
        ddp.append(metrics["test_acc"])
        single.append(fit(TrainConfig("sage", seed=s), cora, progress=False).metrics["test_acc"])
    gap = statistics.mean(ddp) - statistics.mean(single)
    print(f"sage on Cora, seeds {list(SEEDS)}: 2 processes {statistics.mean(ddp):.4f}, 1 process {statistics.mean(single):.4f}")
    assert abs(gap) <= 0.01, (ddp, single)
    # the checkpoint rank 0 wrote loads, and predicts as well as it scored
    ck = load_checkpoint(tmp_path / "ddp-s0" / "checkpoint.pt", cora)
    pred = predict_proba(ck.model, cora).argmax(1)
    acc = (pred[cora.test_mask] == cora.y[cora.test_mask]).float().mean().item()
    assert acc == pytest.approx(ddp[0], abs=1e-6)


def test_torchrun_minibatch_on_a_synthetic_graph_then_serve_it(cli_env, tmp_path):
    out = tmp_path / "synth"
    torchrun("train", "--model", "sage", "--dataset", "synthetic-20k", "--batch-size", 512, "--fanouts", "10,5",
             "--epochs", 5, "--out", out, env=cli_env)
    run = json.loads((out / "run.json").read_text())
    assert run["params"]["batch_size"] == 512 and run["params"]["fanouts"] == [10, 5]
    assert run["dataset"]["name"] == "synthetic-20000" and run["metrics"]["processes"] == 2
    assert run["metrics"]["test_acc"] > 0.5  # 7 classes: chance is 0.14
    # the service's predictor rebuilds the same synthetic graph from the checkpoint's dataset name
    pr = Predictor.from_checkpoint(out / "checkpoint.pt")
    g = load_graph("synthetic-20k")
    pred = predict_proba(load_checkpoint(out / "checkpoint.pt", g).model, g).argmax(1)
    assert [p["class_id"] for p in pr.predict_nodes(list(range(50)))] == pred[:50].tolist()


def test_minibatch_bad_settings_fail_with_a_message(invoke, cli_env, tmp_path):
    r = invoke("train", "--model", "sage", "--batch-size", "64", "--fanouts", "10,x", env=cli_env)
    assert r.exit_code == 2 and "fanouts must be comma-separated integers" in r.stderr
    r = invoke("train", "--model", "appnp", "--batch-size", "64", "--epochs", "1", "--out", tmp_path / "a", env=cli_env)
    assert r.exit_code == 2 and "reaches 10 hops" in r.stderr and not (tmp_path / "a").exists()
