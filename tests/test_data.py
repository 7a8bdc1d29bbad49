import functools
import http.server
import shutil
import threading

import pytest
import torch

from cora_gnn.config import ENV_DATA_MIRROR
from cora_gnn import data as D
from cora_gnn.errors import UsageError
from cora_gnn.data import DATASETS, DataError, UnknownDatasetError, class_names, fetch_raw, load_dataset
from cora_gnn.files import sha256


def _raw_labels(mirror, name):
    "Label counts straight from the raw pickles (one-hot rows of ally and ty), not through PyG."
    import pickle
    import numpy as np
    def read(part):
        with open(mirror / name / "raw" / f"ind.{name.lower()}.{part}", "rb") as f:
            return np.asarray(pickle.load(f, encoding="latin1"))
    return [int(c) for c in read("ally").sum(0) + read("ty").sum(0)]


@pytest.mark.parametrize("name,n_train,n_val,n_test", [("Cora", 140, 500, 1000), ("CiteSeer", 120, 500, 1000)])
def test_split_sizes_and_shapes_come_from_the_files(mirror, data_dir, name, n_train, n_val, n_test):
    g = load_dataset(name, root=data_dir, mirror=mirror)
    import pickle
    with open(mirror / name / "raw" / f"ind.{name.lower()}.graph", "rb") as f:
        adjacency = pickle.load(f, encoding="latin1")
    with open(mirror / name / "raw" / f"ind.{name.lower()}.allx", "rb") as f:
        allx = pickle.load(f, encoding="latin1")
    assert g.num_nodes == len(adjacency)
    assert g.num_features == allx.shape[1]
    assert len(g.class_names) == len(DATASETS[name.lower()].class_sizes)
    assert [int(g[f"{s}_mask"].sum()) for s in ("train", "val", "test")] == [n_train, n_val, n_test]
    assert not (g.train_mask & g.val_mask).any() and not (g.val_mask & g.test_mask).any()
    assert torch.allclose(g.x[g.x.sum(1) > 0].sum(1), torch.ones(int((g.x.sum(1) > 0).sum())))


@pytest.mark.parametrize("name", ["Cora", "CiteSeer"])
def test_class_names_match_raw_label_counts(mirror, data_dir, name):
    g = load_dataset(name, root=data_dir, mirror=mirror)
    by_size = {v: k for k, v in DATASETS[name.lower()].class_sizes.items()}
    # counted from the raw one-hot labels, independently of PyG: each index's count is exactly its class's corpus size
    assert g.class_names == [by_size[c] for c in _raw_labels(mirror, name)]


def test_cora_label_counts_are_the_corpus_sizes(cora):
    counts = torch.bincount(cora.y).tolist()
    assert {n: counts[i] for i, n in enumerate(cora.class_names)} == DATASETS["cora"].class_sizes


def test_class_names_refuse_a_mismatch():
    with pytest.raises(DataError, match="label 0 has 100 papers"):
        y = torch.tensor([0] * 100 + [1] * 418 + [2] * 818 + [3] * 426 + [4] * 217 + [5] * 180 + [6] * 351)
        class_names(y, "Cora")
    with pytest.raises(DataError, match="labels have 9 classes, expected 7"):
        class_names(torch.tensor([0, 1, 2, 8]), "Cora")


def test_corrupt_file_is_caught_with_both_sums(tmp_path, mirror):
    bad = tmp_path / "mirror"
    shutil.copytree(mirror / "Cora", bad / "Cora")
    (bad / "Cora" / "raw" / "ind.cora.graph").write_bytes(b"\x80\x04garbage")
    with pytest.raises(DataError) as e:
        load_dataset("Cora", root=tmp_path / "cache", mirror=bad)
    msg = str(e.value)
    assert "checksum mismatch for ind.cora.graph" in msg and DATASETS["cora"].sha256["graph"] in msg
    assert ENV_DATA_MIRROR in msg
    assert not (tmp_path / "cache" / "Cora" / "raw" / "ind.cora.graph").exists()  # nothing corrupt is cached


def test_corrupt_cache_is_caught(tmp_path, mirror):
    raw = fetch_raw("Cora", root=tmp_path, mirror=mirror)
    (raw / "ind.cora.x").write_bytes(b"truncated")
    with pytest.raises(DataError, match=r"checksum mismatch for ind.cora.x from the cache"):
        load_dataset("Cora", root=tmp_path, mirror=mirror)


def test_missing_mirror_says_where_it_looked_and_how_to_fix(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset("Cora", root=tmp_path, mirror=tmp_path / "no-such-mirror")
    msg = str(e.value)
    assert str(tmp_path / "no-such-mirror" / "Cora" / "raw" / "ind.cora.x") in msg
    assert ENV_DATA_MIRROR in msg and "could not fetch" in msg


def test_no_network_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_DATA_MIRROR, raising=False)
    monkeypatch.setattr(D, "PLANETOID_URL", "http://127.0.0.1:9/planetoid")  # nothing listens on the discard port
    with pytest.raises(DataError) as e:
        load_dataset("Cora", root=tmp_path)
    assert "http://127.0.0.1:9/planetoid/ind.cora.x" in str(e.value) and ENV_DATA_MIRROR in str(e.value)


def test_mirror_from_environment_and_url(tmp_path, mirror, cora, monkeypatch):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(mirror))
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv(ENV_DATA_MIRROR, f"http://127.0.0.1:{srv.server_port}/")
        g = load_dataset("Cora", root=tmp_path)
    finally:
        srv.shutdown()
    assert torch.equal(g.x, cora.x)
    assert sha256(tmp_path / "Cora" / "raw" / "ind.cora.ty") == DATASETS["cora"].sha256["ty"]


def test_unknown_dataset_lists_the_known_ones(tmp_path):
    with pytest.raises(UnknownDatasetError, match="unknown dataset 'Pubmedd'.*Cora, CiteSeer, PubMed"):
        load_dataset("Pubmedd", root=tmp_path)
    assert issubclass(UnknownDatasetError, UsageError) and not issubclass(DataError, UsageError)  # the caller's mistake, exit 2



@pytest.mark.slow
def test_processes_loading_a_fresh_cache_at_once_all_get_the_graph(mirror, tmp_path):
    # Without the lock, a process could read the processed file another one was still writing (a corrupt-zip error).
    import subprocess, sys
    code = "import sys; from cora_gnn.data import load_dataset; print(load_dataset('Cora', root=sys.argv[1], mirror=sys.argv[2]).num_nodes)"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(mirror)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [(p.returncode, err) for p, (_, err) in zip(procs, outs) if p.returncode] == []
    assert [int(out) for out, _ in outs] == [load_dataset("Cora", root=tmp_path, mirror=mirror).num_nodes] * 4
