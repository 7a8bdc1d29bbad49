"""The PostgreSQL prediction log, on a real PostgreSQL server (scripts/tmp_postgres.py): the log itself, the service and
the drift command on it, several replicas writing it while one is killed, and a server that cannot be reached."""
import pytest
import asyncio
import json
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from itertools import cycle

import httpx

from cora_gnn.logread import read_log
from cora_gnn.predlog import PredictionLog, explanation_row, log_row
from cora_gnn.feedback import ConflictingLabel, read_feedback, record_feedback

pytestmark = pytest.mark.slow  # every test here starts a process (server, subprocess or papermill)

NODE = dict(index=3, class_id=1, class_name="Theory", confidence=0.9)
PAPER = dict(index=None, class_id=0, class_name="Case_Based", confidence=0.5)


def test_rows_from_threads_and_coroutines_land_once(pg_url):
    with PredictionLog(pg_url) as log:
        futs = [log.submit([log_row(NODE, f"t{i}", "gcn", "run-a", ts=i)]) for i in range(50)]
        assert [f.result(30) for f in futs] == [1] * 50
        async def many():
            return await asyncio.gather(*(log.submit_async([log_row(PAPER, f"a{i}", "gcn", "run-a", words=[4, i], cites=[3], ts=100 + i)])
                                          for i in range(70)))
        assert asyncio.run(many()) == [1] * 70
        assert (log.rows, log.failures) == (120, 0) and log.problem() is None
    rows = read_log(pg_url)
    assert len(rows) == 120 and rows.request_id.nunique() == 120 and rows.id.is_monotonic_increasing
    assert read_log(pg_url, since=10, until=12).ts.tolist() == [10.0, 11.0]
    paper = read_log(pg_url, last=1).iloc[0]
    assert (paper.request_id, paper.endpoint, json.loads(paper.words), json.loads(paper.cites)) == ("a69", "paper", [4, 69], [3])
    assert paper.ts == 169.0 and str(rows.node_index.dtype) == "Int64" and rows.node_index.isna().sum() == 70


def test_explanations_and_a_second_writer_share_the_tables(pg_url):
    e = {**PAPER, "method": "ig", "words": [dict(word=4, attribution=.1)], "papers": [], "fidelity": dict(drop=.2)}
    with PredictionLog(pg_url) as a, PredictionLog(pg_url) as b:  # the second creates nothing twice
        a.submit([explanation_row(e, "e1", "gcn", "run-a", [4], [3]), log_row(NODE, "e1", "gcn", "run-a")]).result(30)
        b.submit([log_row(NODE, "b1", "gcn", "run-b")]).result(30)
    assert read_log(pg_url, table="explanations").drop_without_top.tolist() == [.2]
    assert read_log(pg_url).request_id.tolist() == ["e1", "b1"]


def test_racing_labels_for_one_prediction_record_exactly_one(pg_url):
    with PredictionLog(pg_url) as log: log.submit([log_row(NODE, "f1", "gcn", "run-a"), log_row(PAPER, "f1", "gcn", "run-a")]).result(30)
    def label(c):
        try: return record_feedback(pg_url, "f1", 1, c)["created"]
        except ConflictingLabel: return "conflict"
    with ThreadPoolExecutor(8) as ex: outcomes = list(ex.map(label, [0, 1, 2, 3, 4, 5, 6, 0]))
    winner = read_feedback(pg_url).label.tolist()
    assert len(winner) == 1 and outcomes.count(True) == 1, (outcomes, winner)
    assert outcomes.count("conflict") == 7 - outcomes.count(False) and (outcomes.count(False) == 0 or winner == [0]), outcomes


def test_unreachable_server_is_a_clear_error(cli, cli_env, registry, free_port, tmp_path):
    url = f"postgresql://cora:secret@127.0.0.1:{free_port()}/cora"
    r = cli("serve", "--runs", registry[1], "--log-db", url, "--port", free_port(), env=cli_env, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 1 and "cannot open the prediction log postgresql://cora:***@127.0.0.1" in out and "Connection refused" in out
    assert "secret" not in out and "Traceback" not in out
    r = cli("drift", "--runs", registry[1], "--log-db", url, "--drift-dir", tmp_path / "d", env=cli_env, timeout=120)
    assert r.returncode != 0 and "cannot read the prediction log" in r.stdout + r.stderr and "Traceback" not in r.stdout + r.stderr


def test_service_and_drift_command_on_postgres(start_server, registry, cli, cli_env, pg_url, tmp_path):
    s = start_server("--runs", registry[1], "--log-db", pg_url, env={**cli_env, "CORA_GNN_ADMIN_TOKEN": "pg-token"})
    r = s.post("/api/v1/predict", json={"indices": [0, 1, 2]}, headers={"X-Request-ID": "pg-1"}).json()
    assert r["logged"] is True
    auth = {"Authorization": "Bearer pg-token"}
    preds = [p["class_id"] for p in r["predictions"]]
    for item, label in enumerate([preds[0], (preds[1] + 1) % 7]):
        assert s.post("/api/v1/feedback", json={"request_id": "pg-1", "item": item, "class_id": label}, headers=auth).status_code == 201
    assert s.post("/api/v1/feedback", json={"request_id": "pg-1", "item": 0, "class_id": (preds[0] + 1) % 7}, headers=auth).status_code == 409
    assert s.post("/api/v1/feedback", json={"request_id": "pg-9", "class_id": 0}, headers=auth).status_code == 404
    for i in range(30):
        assert s.post("/api/v1/predict/paper", json={"words": [i, i + 7], "cites": [i]}).json()["logged"]
    rows = read_log(pg_url)
    assert rows[rows.request_id == "pg-1"].node_index.tolist() == [0, 1, 2] and (rows.endpoint == "paper").sum() == 30
    d = cli("drift", "--runs", registry[1], "--log-db", pg_url, "--drift-dir", tmp_path / "drift", "--last", 100, env=cli_env, timeout=300)
    assert d.returncode == 0, d.stderr
    summary = json.loads((tmp_path / "drift" / "summary.json").read_text())
    assert summary["rows"]["current"] == len(rows) == 33
    assert {k: summary["window"]["accuracy"][k] for k in ("predictions", "labelled", "realised")} == dict(predictions=33, labelled=2, realised=0.5)


def test_replicas_share_one_log_and_a_killed_one_loses_nothing_acknowledged(start_server, registry, pg_url):
    replicas = [start_server("--runs", registry[1], "--log-db", pg_url) for _ in range(3)]
    acked, refused, lock = set(), [], threading.Lock()
    killed = threading.Event()

    def call(job):
        i, s = job
        if i == 150 and s is replicas[0]:  # mid-load, the first replica dies without a word
            s.proc.send_signal(signal.SIGKILL)
            killed.set()
        try:
            r = httpx.post(s.url + "/api/v1/predict", json={"index": i % 2000}, headers={"X-Request-ID": f"rep-{i}"}, timeout=30)
            ok = r.status_code == 200 and r.json()["logged"]
        except httpx.TransportError:
            ok = False
        with lock: (acked.add(i) if ok else refused.append(i))

    with ThreadPoolExecutor(12) as ex: list(ex.map(call, zip(range(600), cycle(replicas))))
    assert killed.is_set() and replicas[0].proc.wait(10) == -signal.SIGKILL
    rows = read_log(pg_url)
    logged = rows.request_id.str.removeprefix("rep-").astype(int)
    assert set(logged) >= acked  # none lost
    assert logged.is_unique  # none twice
    assert set(logged) - acked <= set(refused)  # a row beyond the acknowledged ones can only be a request cut off by the kill
    assert len(acked) >= 400  # the two live replicas answered their share
