import pytest
import torch
import torch_geometric.typing as pyg_typing
from conftest import ROOT

from cora_gnn.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from cora_gnn.models import MODELS
from cora_gnn.hparams import TrainConfig
from cora_gnn.runs import save_run
from cora_gnn.synth import random_graph
from cora_gnn.config import ENV_SAMPLER
from cora_gnn.errors import UsageError
from cora_gnn.sampling import SamplerMissingError
from cora_gnn.train import fit, predict_proba

QUICK = {"gcnii": {"layers": 4, "epochs": 20}, "gat": {"epochs": 20}, "appnp": {"epochs": 20}}


def _strip(m):
    return {k: v for k, v in m.items() if k != "seconds"}


@pytest.mark.parametrize("name", list(MODELS))
def test_same_seed_same_metrics_on_cora(cora, name):
    cfg = TrainConfig(name, seed=7, **{"epochs": 15, **QUICK.get(name, {})})
    a, b = fit(cfg, cora, progress=False), fit(cfg, cora, progress=False)
    assert _strip(a.metrics) == _strip(b.metrics)
    assert a.history.equals(b.history)
    c = fit(TrainConfig(name, seed=8, **{"epochs": 15, **QUICK.get(name, {})}), cora, progress=False)
    assert not c.history[["loss"]].equals(a.history[["loss"]])


def test_short_fit_beats_chance_by_far(cora):
    res = fit(TrainConfig("gcn", epochs=60, seed=0), cora, progress=False)
    chance = 1 / len(cora.class_names)
    assert res.metrics["test_acc"] > 0.7 > 4 * chance
    assert res.history.loss.iloc[-1] < 0.6 * res.history.loss.iloc[0]


def test_early_stopping_stops_and_keeps_the_best_epoch(cora):
    res = fit(TrainConfig("gcn", epochs=1000, patience=10, seed=0), cora, progress=False)
    assert res.metrics["epochs"] < 1000
    h = res.history.set_index("epoch")
    assert res.metrics["val_acc"] == h.val_acc.max()
    assert res.metrics["test_acc"] == h.test_acc[res.metrics["best_epoch"]]
    # the returned model is the best epoch's, not the last one's
    acc = (predict_proba(res.model, cora).argmax(1) == cora.y)[cora.val_mask].float().mean().item()
    assert acc == pytest.approx(res.metrics["val_acc"])


@pytest.mark.parametrize("name", list(MODELS))
def test_checkpoint_round_trip_gives_identical_predictions(cora, tmp_path, name):
    res = fit(TrainConfig(name, seed=1, **{**QUICK.get(name, {}), "epochs": 5}), cora, progress=False)
    ck = load_checkpoint(save_checkpoint(res, tmp_path / "m.pt"), cora)
    assert torch.equal(predict_proba(ck.model, cora), predict_proba(res.model, cora))
    assert ck.class_names == cora.class_names and ck.config == res.config and ck.metrics == res.metrics


@pytest.fixture(scope="module")
def saved(cora, tmp_path_factory):
    res = fit(TrainConfig("gcn", epochs=5), cora, progress=False)
    return save_run(res, tmp_path_factory.mktemp("run"), "cli") / "checkpoint.pt"


def test_truncated_checkpoint(saved, tmp_path):
    p = tmp_path / "cut.pt"
    p.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(p)


def test_random_bytes_and_foreign_files(tmp_path):
    (tmp_path / "noise.pt").write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "noise.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a cora-gnn checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))
    torch.save({"format": "x", "payload": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="unsafe"):
        load_checkpoint(tmp_path / "evil.pt")


def test_tampered_weights_and_mismatched_data(saved, tmp_path):
    ck = torch.load(saved, weights_only=True)
    ck["state_dict"]["conv1.lin.weight"] = torch.zeros(3, 3)
    torch.save(ck, tmp_path / "tampered.pt")
    with pytest.raises(CheckpointError, match="do not match the stored configuration"):
        load_checkpoint(tmp_path / "tampered.pt")
    with pytest.raises(CheckpointError, match="the data has 9 features and 3 classes"):
        load_checkpoint(saved, random_graph(num_features=9, num_classes=3))
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "absent.pt")


def test_minibatch_training_needs_no_compiled_sampler(cora, monkeypatch):
    "Without pyg-lib and torch-sparse, mini-batches come from the torch sampler; asking for PyG's says how to build it."
    monkeypatch.setattr(pyg_typing, "WITH_PYG_LIB", False)
    monkeypatch.setattr(pyg_typing, "WITH_TORCH_SPARSE", False)
    monkeypatch.delenv(ENV_SAMPLER, raising=False)
    res = fit(TrainConfig("sage", epochs=2, batch_size=64, seed=0), cora, progress=False)
    assert res.metrics["sampler"] == "torch" and res.metrics["epochs"] == 2
    monkeypatch.setenv(ENV_SAMPLER, "pyg")
    with pytest.raises(SamplerMissingError, match="bash scripts/sampler.sh") as e:
        fit(TrainConfig("sage", epochs=1, batch_size=64), cora, progress=False)
    assert isinstance(e.value, ImportError) and (ROOT / "scripts" / "sampler.sh").is_file()
    monkeypatch.setenv(ENV_SAMPLER, "fastest")
    with pytest.raises(UsageError, match=f"{ENV_SAMPLER} must be one of auto, torch, pyg"):
        fit(TrainConfig("sage", epochs=1, batch_size=64), cora, progress=False)
