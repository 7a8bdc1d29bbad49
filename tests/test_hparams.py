"Every entry of the hyperparameter table reaches Python (`TrainConfig`), the `train` command and the train pipeline."
import json
from pathlib import Path

import pytest

import cora_gnn.train
from cora_gnn.hparams import HPARAMS, TrainConfig, models_taking
from cora_gnn.pipeline import train_params

ROOT = Path(__file__).resolve().parents[1]
OTHER = {"select": "val_loss", "batch_size": 32, "fanouts": (5, 3), "dense_weight_decay": 1e-4}  # no model default to reuse


def setting(name):
    "A model that takes hyperparameter `name`, and a valid value of it other than None (with what it needs beside it)."
    model = models_taking(name)[-1]
    value = getattr(TrainConfig(model).resolve(), name)
    value = OTHER[name] if value is None else value
    return model, {name: value, **({"batch_size": 32} if name == "fanouts" else {})}


@pytest.mark.parametrize("name", list(HPARAMS))
def test_python_takes_it(name):
    model, hp = setting(name)
    assert getattr(TrainConfig(model, **hp).resolve(), name) == hp[name]


@pytest.mark.parametrize("name", list(HPARAMS))
def test_the_train_command_takes_it(name, invoke, monkeypatch, tmp_path):
    seen = []
    def fit(cfg, data, **kw):  # the configuration the command built; no training
        seen.append(cfg)
        raise SystemExit(0)
    monkeypatch.setattr(cora_gnn.train, "fit", fit)
    model, hp = setting(name)
    args = [a for k, v in hp.items() for a in (HPARAMS[k].flag, ",".join(map(str, v)) if isinstance(v, tuple) else str(v))]
    r = invoke("train", "--model", model, "--dataset", "synthetic-200", "--data-root", tmp_path, *args)
    assert r.exit_code == 0 and seen, r.output
    assert getattr(seen[0], name) == hp[name]


def test_the_train_pipeline_has_every_one_as_a_parameter():
    nb = json.loads((ROOT / "nbs/pipelines/train.ipynb").read_text())
    (cell,) = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assigned = [line.split("=")[0].strip() for line in "".join(cell["source"]).splitlines() if "=" in line]
    assert [n for n in HPARAMS if n not in assigned] == []
    for name in HPARAMS:  # and the notebook's call passes each one on to TrainConfig
        model, hp = setting(name)
        assert train_params({"model": model, "out": "x", "smoke": True, **hp}) == {"model": model, "out": "x", **hp}
