"""The alerting rules (deploy/prometheus/): promtool's checks and unit tests, and a real Prometheus server on loopback
scraping a running `cora-gnn serve` while a drifted stream goes through it."""
import shutil
import subprocess
import time

import httpx
import numpy as np
import pytest
import yaml

from cora_gnn.drift import perturb, stream

from conftest import ROOT
from harness import Server, free_port

pytestmark = pytest.mark.slow  # every test here starts a process (server, subprocess or papermill)

RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
TOKEN = "alert-test-token"


def promtool(*args):
    exe = shutil.which("promtool")
    if exe is None: pytest.fail("promtool is missing: apt-get install prometheus (Debian), as scripts/test.sh does")
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_rules_pass_promtool_check_and_their_unit_tests():
    check = promtool("check", "rules", RULES)
    rules = sum(len(g["rules"]) for g in yaml.safe_load(RULES.read_text())["groups"])  # promtool read every rule the file holds
    assert check.returncode == 0 and f"SUCCESS: {rules} rules found" in check.stdout, check.stdout + check.stderr
    unit = promtool("test", "rules", RULES.parent / "rules_test.yml")
    assert unit.returncode == 0 and "SUCCESS" in unit.stdout, unit.stdout + unit.stderr


class Prometheus:
    "A Prometheus server on a free loopback port scraping `target` every second with the project's rules; `stop` ends it."
    def __init__(self, target: str, tmp):
        exe = shutil.which("prometheus")
        if exe is None: pytest.fail("the Prometheus server is missing: apt-get install prometheus (Debian), as scripts/test.sh does")
        self.url = f"http://127.0.0.1:{free_port()}"
        (tmp / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: ['{RULES}']\n"
            f"scrape_configs: [{{job_name: cora-gnn, static_configs: [{{targets: ['{target}']}}]}}]\n")
        self.log = tmp / "prometheus.log"
        self.server = Server([exe, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                              f"--web.listen-address={self.url.removeprefix('http://')}"], self.url, ready="/-/ready",
                             output=self.log.open("w"))
        self.proc = self.server.proc

    def query(self, expr: str) -> list:
        r = httpx.get(self.url + "/api/v1/query", params={"query": expr}, timeout=5)
        r.raise_for_status()
        return r.json()["data"]["result"]

    def wait(self, what, timeout: float = 60):
        "Poll `what()` until it returns something true; its value."
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None: pytest.fail(f"prometheus exited: {self.log.read_text()[-2000:]}")
            try:
                if got := what(): return got
            except httpx.HTTPError: pass
            time.sleep(0.5)
        pytest.fail(f"prometheus: nothing after {timeout} s; its log ends: {self.log.read_text()[-2000:]}")

    def firing(self, name: str) -> list:
        r = httpx.get(self.url + "/api/v1/alerts", timeout=5).json()["data"]["alerts"]
        return [a for a in r if a["labels"]["alertname"] == name and a["state"] == "firing"]

    def stop(self): self.server.stop()


def test_real_prometheus_scrapes_the_service_and_fires_on_a_drifted_stream(start_server, cli_env, registry, predictor, tmp_path):
    server = start_server("--runs", registry[1], "--log-db", tmp_path / "log.db", "--drift-dir", tmp_path / "drift",
                          env={**cli_env, "CORA_GNN_ADMIN_TOKEN": TOKEN})
    prom = Prometheus(server.url.removeprefix("http://"), tmp_path)
    try:
        # the series exist at 0 before the first prediction, so the window's rate counts every one of them
        prom.wait(lambda: prom.query('cora_gnn_prediction_p_correct_count{endpoint="paper"} == 0'))
        assert not prom.firing("CoraGnnDrift")
        # every citation rewired and words added: the summary features drift (either alone moves under half of them)
        words, cites, _ = stream(predictor, 120, "cites_rewired", 1.0, seed=0)
        rng = np.random.default_rng(1)
        words = [perturb(predictor, w, c, "words_added", 1.0, rng)[0] for w, c in zip(words, cites)]
        p_correct, oods = [], []
        for w, c in zip(words, cites):
            r = server.post("/api/v1/predict/paper", json={"words": w, "cites": c})
            assert r.status_code == 200, r.text
            p_correct.append(r.json()["predictions"][0]["p_correct"]); oods.append(r.json()["predictions"][0]["ood"])
        auth = {"Authorization": f"Bearer {TOKEN}"}
        job = server.post("/api/v1/drift", json={"last": 120}, headers=auth).json()
        while job["state"] == "running": time.sleep(0.5); job = server.get(job["poll"], headers=auth).json()
        assert job["state"] == "done" and job["result"]["dataset_drift"] is True, job
        # the recorded estimate is the mean p_correct of what the service answered, through the scrape and the rule
        mean, seen = sum(p_correct) / len(p_correct), []
        def estimate():  # the rule's value once it has been evaluated on a scrape taken after the last prediction
            seen[:] = prom.query("cora_gnn:estimated_accuracy:10m")
            return seen and abs(float(seen[0]["value"][1]) - mean) < 1e-6
        prom.wait(estimate, timeout=30 if prom.query('cora_gnn_prediction_p_correct_count{endpoint="paper"} == 120') else 60)
        ood = prom.query("cora_gnn:ood_mean:10m")  # recorded on the same scrapes
        assert abs(float(ood[0]["value"][1]) - sum(oods) / len(oods)) < 1e-6, (ood, sum(oods) / len(oods))
        alert = prom.wait(lambda: prom.firing("CoraGnnDrift"))
        assert alert[0]["labels"]["severity"] == "warning"
        share = job["result"]["drift_share"]
        assert f"{share * 100:.4g}%" in alert[0]["annotations"]["description"], (share, alert)
    finally:
        prom.stop()
