"""Fixtures and helpers every test file shares: the data mirror, the environment of the `cora-gnn` subprocesses, a trained
and promoted registry, the command line, papermill, and `cora-gnn serve` on a free loopback port; and the quick tier.

`pytest --quick` runs the tests not marked `slow`, and fails any of them that starts a process (a server, a subprocess,
papermill, a spawned worker): a test that needs one is marked `slow`, so the quick tier stays quick as tests are added."""
import importlib.util
import json
import multiprocessing.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cora_gnn.cli import app
from cora_gnn.config import ENV_DATA_MIRROR, ENV_DATA_ROOT
from cora_gnn.data import load_dataset
from cora_gnn.scores import record_run
from cora_gnn.hparams import TrainConfig
from cora_gnn.predict import Predictor
from cora_gnn.runs import promote
from cora_gnn.train import fit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))  # harness.py and tmp_postgres.py, which the benchmarks share
import harness  # noqa: E402
from tmp_postgres import TempPostgres  # noqa: E402

BIN = Path(sys.executable).parent
EXE = harness.EXE
PIPELINES = ROOT / "nbs" / "pipelines"


def pytest_addoption(parser):
    parser.addoption("--quick", action="store_true", help="the quick tier: only tests not marked slow, none of which may start a process")


LONGEST_FIRST = ["test_site.py", "test_scale.py", "test_readme.py", "test_container.py", "test_benchmarks.py", "test_pipelines.py"]


def pytest_collection_modifyitems(config, items):
    """The files that take minutes first, longest first (pytest -n 2 --dist loadfile --no-loadscope-reorder hands the
    workers files in this order, so neither is left with a long one at the end); under --quick, the tests not marked slow alone."""
    items.sort(key=lambda item: LONGEST_FIRST.index(item.path.name) if item.path.name in LONGEST_FIRST else len(LONGEST_FIRST))
    if not config.getoption("--quick"): return
    slow = [item for item in items if item.get_closest_marker("slow")]
    config.hook.pytest_deselected(items=slow)
    items[:] = [item for item in items if not item.get_closest_marker("slow")]


def pytest_configure(config):
    "Under --quick, starting a process (session fixtures included) fails the test that asked for it, saying what to do."
    if not config.getoption("--quick"): return
    def refuse(*args, **kwargs):
        raise AssertionError("a test of the quick tier starts a process, which the quick tier does not: mark it @pytest.mark.slow")
    subprocess.Popen.__init__ = refuse
    multiprocessing.util.spawnv_passfds = refuse


@pytest.fixture(scope="session")
def mirror() -> Path:
    "The local Planetoid mirror: $CORA_GNN_DATA_MIRROR, else ../shared/data/planetoid beside the repository."
    m = Path(os.environ.get(ENV_DATA_MIRROR) or ROOT.parent / "shared" / "data" / "planetoid").resolve()
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


@pytest.fixture(scope="session")
def cli_env(mirror, data_dir) -> dict:
    "The environment of `cora-gnn` and papermill subprocesses: the data mirror and cache, tracking off, no drain period."
    return {**os.environ, ENV_DATA_MIRROR: str(mirror), ENV_DATA_ROOT: str(data_dir), "WANDB_MODE": "disabled",
            "CORA_GNN_DRAIN": "0"}  # servers stop at once on SIGTERM (tests/test_ops.py checks the drain)


def benchmark(name):
    "benchmarks/<name>.py as a module: to run its `main`, or read its summary rows, in this process."
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def unmeasured(env:dict) -> dict:
    """ENV without the variables that start coverage in a subprocess: for the benchmarks and the README's commands, which
    run code other tests cover, and which coverage's tracing made about a quarter slower (the suite is bound by its CPU)."""
    return {k: v for k, v in env.items() if k not in ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")}


@pytest.fixture(scope="session")
def bench_env(cli_env) -> dict:
    "`cli_env`, unmeasured: the environment of the benchmark scripts the tests run."
    return unmeasured(cli_env)


@pytest.fixture
def env(cli_env, tmp_path) -> dict:
    "`cli_env` with a home of its own, so that nothing a tool writes under $HOME is shared between tests."
    home = tmp_path / "home"
    home.mkdir()
    return {**cli_env, "HOME": str(home), "WANDB_CONFIG_DIR": str(home / ".config" / "wandb"),
            "WANDB_CACHE_DIR": str(home / ".cache" / "wandb")}


@pytest.fixture(scope="session")
def cli():
    "Run `cora-gnn ARGS` to completion: `cli(*args, env=..., cwd=...)` gives the `CompletedProcess`."
    def run(*args, env=None, cwd=None, timeout=300):
        return subprocess.run([str(EXE), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    return run


@pytest.fixture(scope="session")
def invoke():
    """Run `cora-gnn ARGS` in this process (Typer's runner): `invoke(*args, env=...)` gives the `Result`. `train` sets the
    process's torch threads: they are put back after."""
    def run(*args, env=None):
        before = torch.get_num_threads()
        try: return CliRunner().invoke(app, [str(a) for a in args], env=env)
        finally: torch.set_num_threads(before)
    return run


@pytest.fixture
def refuse(invoke, monkeypatch):
    """`invoke` for a `cora-gnn serve` that must refuse to start: in this process, and the test fails at once if the
    server would start serving instead."""
    import uvicorn
    monkeypatch.setattr(uvicorn.Server, "run", lambda *a, **k: pytest.fail("the service started where it had to refuse"))
    return invoke


@pytest.fixture(scope="session")
def papermill():
    "Run pipeline notebook NB with papermill: `papermill(nb, out_nb, cwd, env, **params)` (lists go as YAML, strings raw)."
    def run(nb, out_nb, cwd, env, **params):
        args = [sys.executable, "-m", "papermill", str(PIPELINES / nb), str(out_nb), "--cwd", str(cwd), "-k", "python3"]
        for k, v in params.items():
            if isinstance(v, list): args += ["-y", f"{k}: {json.dumps(v)}"]
            else: args += ["-p", k, str(v)] if not isinstance(v, str) else ["-r", k, v]
        return subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    return run


def pipeline_checks(nb, **params):
    """Pipeline notebook NB in this process (execnb), as far as its checks: the cells up to its parameters cell, PARAMS set
    after it as papermill would, then the next code cell, which checks them. Gives (the exception raised, the text shown)."""
    from execnb.shell import CaptureShell
    from fastcore.nbio import mk_cell, read_nb
    book = read_nb(PIPELINES / nb)
    at = next(i for i, c in enumerate(book.cells) if "parameters" in c.metadata.get("tags", []))
    checks = next(c for c in book.cells[at + 1:] if c.cell_type == "code")
    book.cells = [*book.cells[:at + 1], mk_cell("\n".join(f"{k} = {v!r}" for k, v in params.items())), checks]
    shell = CaptureShell()
    shell.run_all(book, exc_stop=False)
    shown = "".join("".join(o.get("text", "")) + str(o.get("evalue", "")) for o in checks.outputs)
    return shell.exc, shown


@pytest.fixture(scope="session")
def free_port():
    "A function giving a free TCP port on loopback."
    return harness.free_port


def Server(env, *args, cwd=None, timeout=90) -> harness.Server:
    "`cora-gnn serve ARGS` in a subprocess on a free loopback port, ready when returned (scripts/harness.py); `stop` ends it."
    return harness.serve(*args, env=env, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="session")
def server_cls():
    "`server_cls(env, *args)` starts `cora-gnn serve` (a `harness.Server`); the caller stops it."
    return Server


@pytest.fixture
def start_server(cli_env):
    "Start `cora-gnn serve ARGS` (with `cli_env` unless `env=` is given), stopped when the test ends."
    started = []
    def start(*args, env=None, **kw):
        started.append(Server(env or cli_env, *args, **kw))
        return started[-1]
    yield start
    for s in started: s.stop()


@pytest.fixture(scope="session")
def registry(cora, tmp_path_factory):
    "A GCN trained on Cora with its defaults and its accuracy estimator, written as run `gcn` of a fresh registry and promoted: (fit result, registry)."
    runs = tmp_path_factory.mktemp("registry")
    result = fit(TrainConfig("gcn", seed=0), cora, progress=False)
    record_run(result, cora, runs / "gcn", "cli")
    promote("gcn", runs)
    return result, runs


@pytest.fixture(scope="session")
def predictor(registry, cora):
    "The registry's promoted GCN, ready to answer."
    return Predictor.from_checkpoint(registry[1] / "gcn" / "checkpoint.pt", cora)


@pytest.fixture(scope="session")
def postgres():
    "A throwaway PostgreSQL server on loopback (scripts/tmp_postgres.py), stopped and deleted after the session."
    with TempPostgres() as pg: yield pg


@pytest.fixture
def pg_url(postgres) -> str:
    "The URL of a new, empty database on the `postgres` server, for one test."
    import uuid
    import psycopg
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres.url, autocommit=True) as conn: conn.execute(f"CREATE DATABASE {name}")
    return postgres.url.rsplit("/", 1)[0] + "/" + name
