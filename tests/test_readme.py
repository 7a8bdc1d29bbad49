"""The README as a new user reads it: short, every command block that can run here runs as written, and the quick start
(`bash scripts/start.sh`) serves what it prints."""
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest
from conftest import BIN, ROOT, unmeasured

from cora_gnn.runs import list_runs

README = (ROOT / "README.md").read_text()
NOT_RUN = {  # the README's commands this test does not run as a step, with the reason
    "bash scripts/start.sh": "it serves until stopped: test_start_script_trains_promotes_serves_and_reuses runs it",
    "bash scripts/test.sh": "the test command, which runs this test",
    "bash scripts/test.sh --quick": "the test command's quick tier: the suite's own tests not marked slow",
    "papermill nbs/pipelines/planetoid.ipynb runs/planetoid.ipynb -y '{datasets: [Cora, CiteSeer], models: [gcn, gat, sage, appnp, sgc, grand]}'":
        "about an hour on a CPU: the site build runs it small (test_site.py::test_the_planetoid_pipeline_runs_every_model_on_cora_and_citeseer)",
    "python benchmarks/accuracy.py --models grand --datasets Cora    # row by row":
        "ten minutes: the benchmark suite's smoke run (test_suite_smoke) runs it small",
    "python benchmarks/validation_grid.py --model gcnii --dataset CiteSeer":
        "over an hour on a CPU: test_validation_grid_benchmark runs the script small",
}


def blocks(lang):
    return re.findall(rf"^```{lang}\n(.*?)^```", README, re.S | re.M)


def commands():
    return [line for block in blocks("sh") for line in block.splitlines() if line.strip()]


def test_readme_fits_on_a_few_screens():
    assert len(README.encode()) < 8192, len(README.encode())


@pytest.mark.slow
def test_every_command_block_runs_as_written(tmp_path, env):
    "From a folder laid out like the repository root, inside the environment: each line of each sh block, then the Python."
    for name in ("nbs", "scripts", "benchmarks", "pyproject.toml"): (tmp_path / name).symlink_to(ROOT / name)
    env = unmeasured({**env, "PATH": f"{BIN}{os.pathsep}{env['PATH']}"})
    assert set(NOT_RUN) <= set(commands()), "a command named in NOT_RUN is no longer in the README"
    failed = []
    for line in [c for c in commands() if c not in NOT_RUN] + [f"{sys.executable} -c {shlex.quote(p)}" for p in blocks("python")]:
        r = subprocess.run(line, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        if r.returncode: failed.append(f"$ {line}\nexit {r.returncode}\n{(r.stdout + r.stderr)[-1500:]}")
    assert not failed, "\n\n".join(failed)
    runs = tmp_path / "runs"
    for run in ("sgc", "gcn-50", "sage-20k", "gcn-s0"): assert (runs / run / "run.json").is_file(), run
    assert list_runs(runs).query("promoted").run.tolist() == ["sgc"]
    assert json.loads((runs / "gcn-50" / "run.json").read_text())["params"]["epochs"] == 50


def _wait_for(path, text, proc, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = path.read_text()
        if text in out or proc.poll() is not None: return out
        time.sleep(0.5)
    return path.read_text()


def _start(env, log):
    return subprocess.Popen(["bash", "scripts/start.sh"], cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(proc):
    os.killpg(proc.pid, signal.SIGTERM)
    return proc.wait(timeout=60)


@pytest.mark.slow
def test_start_script_trains_promotes_serves_and_reuses(tmp_path, env, free_port, cora):
    "The quick start as the README gives it, in the suite's .venv: the curl lines it prints answer for node 0 and a new paper."
    assert (ROOT / ".venv" / "bin" / "python").exists(), "run the suite with `bash scripts/test.sh`, which makes .venv"
    port = free_port()
    env = {**env, "CORA_GNN_RUNS": str(tmp_path / "runs"), "CORA_GNN_PORT": str(port)}
    for attempt in ("first", "again"):
        log = tmp_path / f"start-{attempt}.log"
        proc = _start(env, log)
        try:
            out = _wait_for(log, "Ctrl-C stops it", proc, timeout=600)
            assert f"serving the run gcn on http://127.0.0.1:{port}" in out, out[-3000:]
            assert "start.sh: line" not in out, out[-3000:]  # no warning or error of bash's own
            curls = [line.strip() for line in out.splitlines() if line.strip().startswith("curl ")]
            assert len(curls) == 2 and all(f"127.0.0.1:{port}" in c for c in curls), out
            node, paper = (json.loads(subprocess.run(c, shell=True, capture_output=True, text=True, timeout=30).stdout) for c in curls)
        finally: assert _stop(proc) in (0, -signal.SIGTERM, 143), log.read_text()[-3000:]
        assert node["predictions"][0]["index"] == 0 and node["logged"] and node["run_id"] == "gcn", node
        assert paper["predictions"][0]["class_name"] in cora.class_names and paper["logged"], paper
        assert ("reusing it" in out) == (attempt == "again"), out[-3000:]
    assert list_runs(tmp_path / "runs").query("promoted").run.tolist() == ["gcn"]
