"""Keep the Dockerfile honest without a Docker engine: check its shape, then run its own RUN, CMD and HEALTHCHECK
commands here (a fresh venv stands in for the image, a temporary folder for the /work volume)."""
import json
import shlex
import subprocess
import time

import httpx
import pytest

from cora_gnn.config import ENV_DATA_MIRROR, ENV_DATA_ROOT

from conftest import ROOT
import image as docker_image  # scripts/image.py
from image import values


def test_dockerfile_shape():
    assert values("FROM") and values("FROM")[0].endswith("-slim")
    runs = " ".join(values("RUN"))
    assert "torch==2.13.0" in runs and "pip install ." in runs
    user = values("USER")
    assert user and user[-1] not in ("root", "0")
    assert values("EXPOSE") == ["8000"]
    (hc,) = values("HEALTHCHECK")
    assert "CMD" in hc and "/health" in hc
    assert json.loads(values("CMD")[-1])[:2] == ["cora-gnn", "serve"]
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*" and "!cora_gnn/" in ignore  # an allow-list: no .git, data, runs or venv in the context


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """The image's install steps run in a fresh venv (scripts/image.py) on a build context that holds only what the
    Dockerfile copies: scripts/test.sh's build in build/image while the code is unchanged since, else one of its own."""
    dest = ROOT / "build" / "image"
    if not docker_image.ready(dest): dest = docker_image.build(tmp_path_factory.mktemp("image") / "image")
    return dest / "venv" / "bin", docker_image.env_for(dest)


@pytest.mark.slow
def test_the_image_trains_promotes_and_serves(image, mirror, free_port, tmp_path):
    bin_dir, env = image
    work = tmp_path / "work"
    work.mkdir()
    env = {**env, ENV_DATA_MIRROR: str(mirror), "CORA_GNN_PORT": str(free_port())}
    env.pop(ENV_DATA_ROOT, None)  # the volume's data/ folder, as in the container
    for k, v in (a.split("=", 1) for a in shlex.split(" ".join(values("ENV")))):
        env.setdefault(k, v)  # the image's environment, under what `docker run -e` would set

    def run(*args):
        return subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=work, env=env, capture_output=True, text=True, timeout=300)

    r = run("cora-gnn", "train", "--model", "gcn", "--epochs", "50", "--out", "runs/gcn")
    assert r.returncode == 0, r.stderr
    assert (work / "data" / "Cora").is_dir() and (work / "runs" / "gcn" / "checkpoint.pt").is_file()
    assert run("cora-gnn", "promote", "gcn").returncode == 0

    cmd = json.loads(values("CMD")[-1])
    server = subprocess.Popen([str(bin_dir / cmd[0]), *cmd[1:]], cwd=work, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    health = json.loads(values("HEALTHCHECK")[0].split("CMD", 1)[1])
    try:
        deadline = time.time() + 90
        while run(*health).returncode != 0:
            assert server.poll() is None, server.stdout.read()
            assert time.time() < deadline, "the HEALTHCHECK command never passed"
            time.sleep(0.5)
        url = f"http://127.0.0.1:{env['CORA_GNN_PORT']}"
        r = httpx.post(url + "/api/v1/predict", json={"index": 0}, timeout=30)
        assert r.status_code == 200 and r.json()["run_id"] == "gcn" and r.json()["logged"]
        assert (work / "runs" / "predictions.db").is_file()
    finally:
        server.terminate()
        server.wait(30)
