"""Drift monitoring: no alarm on unperturbed traffic, alarms on the features each perturbation affects, the service's
and the CLI's paths, and the drift pipeline's parameter checks."""
import json
import time

import numpy as np
import pytest
from conftest import pipeline_checks
from fastapi.testclient import TestClient

from cora_gnn.drift import drift_report, monitor, paper_features_frame, reference_frame, simulate, stream
from cora_gnn.logread import read_log
from cora_gnn.predlog import PredictionLog, PredictionLogError
from cora_gnn.serve import ServeConfig, create_app


@pytest.fixture(scope="module")
def pr(predictor):
    return predictor


@pytest.fixture(scope="module")
def reference(pr):
    return reference_frame(pr)


def report_for(pr, reference, kind, severity, seed, n=300):
    words, cites, _ = stream(pr, n, kind, severity, seed)
    preds = [pr.predict_paper(words=w, cites=c) for w, c in zip(words, cites)]
    current = paper_features_frame(pr, words, cites, [p["class_id"] for p in preds], [p["confidence"] for p in preds])
    return drift_report(reference, current)


@pytest.mark.parametrize("seed", range(5))
def test_unperturbed_traffic_shows_no_drift(pr, reference, seed):
    s = report_for(pr, reference, None, 0.0, seed)
    assert s["enough_rows"] and s["dataset_drift"] is False and s["drift_share"] < s["threshold"], s["message"]


@pytest.mark.parametrize("kind,affected,at_least", [
    ("words_removed", ["n_words"], 1),
    ("words_added", ["n_words"], 1),
    ("cites_removed", ["n_cites"], 1),
    ("cites_rewired", ["cites_*"], 4),
    ("class_shift", ["predicted"], 1),
])
def test_strong_perturbation_flags_the_features_it_affects(pr, reference, kind, affected, at_least):
    s = report_for(pr, reference, kind, 1.0, seed=0)
    drifted = [k for k, v in s["columns"].items() if v["drifted"]]
    hits = [d for d in drifted if any(d == a or (a.endswith("*") and d.startswith(a[:-1])) for a in affected)]
    assert len(hits) >= at_least, (kind, drifted)


def drift_job(c, auth, **window):
    "Start a drift job on TestClient `c` and wait for its end."
    r = c.post("/api/v1/drift", json=window, headers=auth)
    assert r.status_code == 202, r.text
    job = r.json()
    while job["state"] == "running":
        time.sleep(0.2)
        job = c.get(job["poll"], headers=auth).json()
    assert job["state"] == "done", job
    return job["result"]


@pytest.mark.slow
def test_the_service_regenerates_and_serves_the_report(pr, tmp_path):
    cfg = ServeConfig(log_db=str(tmp_path / "log.db"), drift_dir=str(tmp_path / "drift"), admin_token="t0ken")
    auth = {"Authorization": "Bearer t0ken"}
    with TestClient(create_app(cfg, pr)) as c:
        assert c.get("/drift").status_code == 404
        for i in range(0, 240, 2): assert c.post("/api/v1/predict", json={"index": i}).status_code == 200
        words, cites, _ = stream(pr, 60, seed=1)
        for w, ci in zip(words, cites): assert c.post("/api/v1/predict/paper", json={"words": w, "cites": ci}).status_code == 200
        s = drift_job(c, auth, last=1000)
        assert s["rows"] == {"reference": pr.num_nodes, "current": 180} and s["enough_rows"]
        assert set(s["columns"]) >= {"n_words", "n_cites", "confidence", "predicted"}
        r = c.get("/drift")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html") and len(r.text) > 100_000
        assert json.loads((tmp_path / "drift" / "summary.json").read_text())["rows"]["current"] == 180
        assert drift_job(c, auth, last=50)["rows"]["current"] == 50


@pytest.mark.slow
def test_missing_or_empty_log_is_a_clear_message(pr, tmp_path, registry, invoke, cli_env):
    with pytest.raises(PredictionLogError, match="no prediction log at"):
        monitor(pr, tmp_path / "none.db", tmp_path / "d")
    PredictionLog(tmp_path / "empty.db").close()
    s = monitor(pr, tmp_path / "empty.db", tmp_path / "d")
    assert s["dataset_drift"] is None and s["message"] == "only 0 current rows (at least 50 needed): no drift verdict"
    r = invoke("drift", "--runs", registry[1], "--log-db", tmp_path / "none.db", "--drift-dir", tmp_path / "d", env=cli_env)
    assert r.exit_code == 1 and "no prediction log at" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_cli_reports_on_a_log(pr, registry, tmp_path, invoke, cli_env):
    with PredictionLog(tmp_path / "log.db") as log: simulate(pr, log, n=200, seed=2)
    r = invoke("drift", "--runs", registry[1], "--log-db", tmp_path / "log.db", "--drift-dir", tmp_path / "d", env=cli_env)
    assert r.exit_code == 0, r.stderr
    assert "200 current rows, 2708 reference nodes" in r.stdout and "dataset drift: False" in r.stdout
    words, cites, _ = stream(pr, 200, seed=2)  # the simulated papers again: the estimate is the mean of their served p_correct
    mean = np.mean([pr.predict_paper(words=w, cites=c)["p_correct"] for w, c in zip(words, cites)])
    assert abs(mean - read_log(tmp_path / "log.db").confidence.mean()) > 0.005  # the estimator is in use: not the mean confidence
    assert f"accuracy: estimated {mean:.3f} (mean p_correct), no feedback labels in the window" in r.stdout, r.stdout
    assert (tmp_path / "d" / "report.html").stat().st_size > 100_000


def test_drift_pipeline_takes_the_first_releases_parameter_names_and_checks_them(registry, tmp_path):
    "What the drift pipeline produces is checked on the site build's run (tests/test_site.py); here, its old names."
    with pytest.warns(FutureWarning) as seen:
        exc, shown = pipeline_checks("drift.ipynb", runs=str(registry[1]), last_n=0, out_dir=str(tmp_path / "drift"))
    assert sorted(str(w.message).split(";")[0] for w in seen) == ["the parameter `last_n` is now `last`",
                                                                  "the parameter `out_dir` is now `drift_dir`"]
    assert "last must be a positive integer, not 0" in str(exc) and "last must be" in shown  # `last_n` was checked as `last`
