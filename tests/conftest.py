import os
from pathlib import Path

import pytest

from cora_gnn.config import ENV_DATA_MIRROR
from cora_gnn.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mirror() -> Path:
    "The local Planetoid mirror: $CORA_GNN_DATA_MIRROR, else ../shared/data/planetoid beside the repository."
    m = Path(os.environ.get(ENV_DATA_MIRROR) or ROOT.parent / "shared" / "data" / "planetoid")
    if not (m / "Cora" / "raw").is_dir():
        pytest.fail(f"the tests need a local Planetoid mirror: set {ENV_DATA_MIRROR} to a folder holding "
                    f"Cora/raw and CiteSeer/raw (looked at {m})")
    return m


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def cora(mirror, data_dir):
    return load_dataset("Cora", root=data_dir, mirror=mirror)
