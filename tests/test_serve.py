"""The prediction service against a real uvicorn process on loopback (and TestClient where a fresh metrics registry is needed)."""
import os
import signal
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from cora_gnn.files import sha256
from cora_gnn.predict import Predictor
from cora_gnn.logread import read_log
from cora_gnn.serve import ServeConfig, create_app


def same_prediction(a, b):
    "Equal up to float rounding (the server runs torch with one thread, the test process with more)."
    floats = ("confidence", "probabilities", "ood", "p_correct")
    return ({k: v for k, v in a.items() if k not in floats} == {k: v for k, v in b.items() if k not in floats}
            and torch.allclose(torch.tensor(a["probabilities"]), torch.tensor(b["probabilities"]), atol=1e-5)
            and all(abs(a[k] - b[k]) < 1e-5 for k in ("ood", "p_correct")))


@pytest.fixture(scope="module")
def server(cli_env, registry, server_cls, tmp_path_factory):
    "One server for the module, serving the registry's promoted GCN."
    tmp = tmp_path_factory.mktemp("serve")
    s = server_cls(cli_env, "--runs", registry[1], "--log-db", tmp / "log.db", "--drift-dir", tmp / "drift")
    s.log_db, s.drift_dir = tmp / "log.db", tmp / "drift"
    yield s
    s.stop()


@pytest.mark.slow
def test_served_node_predictions_are_the_trained_models(server, registry, cora):
    result, _ = registry
    with torch.no_grad(): proba = (result.model(cora.x, cora.edge_index) / result.metrics["temperature"]).softmax(-1)  # calibrated
    idx = list(range(0, cora.num_nodes, 27))
    r = server.post("/api/v1/predict", json={"indices": idx})
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert [p["index"] for p in preds] == idx
    assert [p["class_id"] for p in preds] == proba[idx].argmax(1).tolist()
    assert [p["class_name"] for p in preds] == [cora.class_names[c] for c in proba[idx].argmax(1).tolist()]
    assert torch.allclose(torch.tensor([p["probabilities"] for p in preds]), proba[idx], atol=1e-5)
    one = server.post("/api/v1/predict", json={"index": idx[3]}).json()["predictions"]
    assert one == [preds[3]]


@pytest.mark.slow
def test_info_describes_the_served_run(server, registry, cora):
    _, runs = registry
    info = server.get("/info").json()
    assert (info["model"], info["run_id"]) == ("gcn", "gcn")
    assert info["checkpoint_sha256"] == sha256(runs / "gcn" / "checkpoint.pt")
    assert info["class_names"] == cora.class_names
    assert (info["dataset"]["name"], info["dataset"]["num_nodes"]) == ("Cora", cora.num_nodes)
    assert info["metrics"]["test_acc"] == pytest.approx(registry[0].metrics["test_acc"])
    assert info["versions"]["torch"] == torch.__version__ and info["device"] == "cpu"


@pytest.mark.slow
def test_new_paper_prediction(server, registry, cora):
    "A node of the graph sent again as a new paper (its words and citations) is classified like the node itself."
    pr = Predictor(registry[0].model, cora, cora.class_names, dict(metrics=registry[0].metrics))  # calibrated as served
    src, dst = cora.edge_index
    test_nodes = cora.test_mask.nonzero().view(-1)[:60].tolist()
    agree = 0
    for i in test_nodes:
        words, cites = (cora.x[i] > 0).nonzero().view(-1).tolist(), dst[src == i].tolist()
        r = server.post("/api/v1/predict/paper", json={"words": words, "cites": cites})
        assert r.status_code == 200, r.text
        got = r.json()["predictions"][0]
        assert same_prediction(got, pr.predict_paper(words=words, cites=cites))
        agree += got["class_id"] == pr.nodes[i]["class_id"]
    assert agree >= 0.9 * len(test_nodes), agree
    feats = cora.x[test_nodes[0]].tolist()
    by_features = server.post("/api/v1/predict/paper", json={"features": feats, "cites": [1]}).json()["predictions"][0]
    assert same_prediction(by_features, pr.predict_paper(features=feats, cites=[1]))


BAD = [  # (path, json body or raw bytes, content type, status, message)
    ("/api/v1/predict", {"index": 99999}, None, 422, "indices: 99999 is out of range, valid ids are 0..2707"),
    ("/api/v1/predict", {"index": -3}, None, 422, "-3 is out of range"),
    ("/api/v1/predict", {"indices": [4, 7, 4]}, None, 422, "duplicates: [4]"),
    ("/api/v1/predict", {"index": 2.5}, None, 422, "index: Input should be a valid integer"),
    ("/api/v1/predict", {"indices": ["1"]}, None, 422, "indices.0: Input should be a valid integer"),
    ("/api/v1/predict", {"indices": []}, None, 422, "indices: List should have at least 1 item"),
    ("/api/v1/predict", {"indices": list(range(1001))}, None, 422, "indices: List should have at most 1000 items"),
    ("/api/v1/predict", b"", "application/json", 422, "the request body is empty"),
    ("/api/v1/predict", b"{\"index\": ", "application/json", 422, "not valid JSON"),
    ("/api/v1/predict", b"index=3", "application/x-www-form-urlencoded", 415, "Content-Type must be application/json"),
    ("/api/v1/predict", b"[" + b"1," * 600_000 + b"1]", "application/json", 413, "request body over 1000000 bytes"),
    ("/api/v1/predict/paper", {"words": [1433], "cites": [0]}, None, 422, "words: 1433 is out of range, valid ids are 0..1432"),
    ("/api/v1/predict/paper", {"words": [1, 1], "cites": []}, None, 422, "words has duplicates: [1]"),
    ("/api/v1/predict/paper", {"words": [1], "cites": [2708]}, None, 422, "cites: 2708 is out of range"),
    ("/api/v1/predict/paper", {"features": [0.0] * 10, "cites": [0]}, None, 422, "features has 10 values; this model's vocabulary has 1433 words"),
    ("/api/v1/predict/paper", b'{"features": [NaN' + b", 0" * 1432 + b'], "cites": [0]}', "application/json", 422, "finite number"),
    ("/api/v1/predict/paper", b'{"features": [Infinity' + b", 0" * 1432 + b'], "cites": [0]}', "application/json", 422, "finite number"),
    ("/api/v1/predict/paper", {"features": [-1.0] + [0.0] * 1432, "cites": [0]}, None, 422, "non-negative"),
    ("/api/v1/predict/paper", {"words": [], "cites": []}, None, 422, "no words and no citations"),
    ("/api/v1/predict/paper", {"words": [1], "features": [0.0] * 1433}, None, 422, "not both or neither"),
    ("/api/v1/predict/paper", {"words": [1.5]}, None, 422, "words.0: Input should be a valid integer"),
]


def assert_refused(client, path, body, ctype, status, message):
    "`client` answers the request with `status` and a detail holding `message`."
    kw = {"json": body} if ctype is None else {"content": body, "headers": {"content-type": ctype}}
    r = client.post(path, **kw)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]


@pytest.fixture(scope="module", params=[True, False], ids=["fast path", "FastAPI routes"])
def client(request, predictor, tmp_path_factory):
    "The app in process, with the predict endpoints answered by `cora_gnn.asgi.Guard`'s fast path or by the FastAPI routes."
    log = tmp_path_factory.mktemp("log") / "log.db"
    with TestClient(create_app(ServeConfig(log_db=str(log), fast_path=request.param), predictor)) as c: yield c


@pytest.mark.parametrize("path,body,ctype,status,message", BAD, ids=[m for *_, m in BAD])
def test_both_paths_refuse_bad_input_alike(client, path, body, ctype, status, message):
    assert_refused(client, path, body, ctype, status, message)


def test_both_paths_answer_alike(client, predictor):
    r = client.post("/api/v1/predict", json={"indices": [0, 9]}, headers={"x-request-id": "same"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "same" and r.headers["content-type"] == "application/json"
    assert r.json() == {"predictions": [predictor.nodes[0], predictor.nodes[9]], "model": "gcn", "run_id": "gcn",
                        "request_id": "same", "logged": True}
    r = client.post("/api/v1/predict/paper", json={"words": [3, 8], "cites": [1]})
    assert same_prediction(r.json()["predictions"][0], predictor.predict_paper(words=[3, 8], cites=[1]))


@pytest.mark.slow
def test_no_server_errors_after_bad_input(server):
    "A real server refuses every bad input with its status and reason (each case, both paths in process: above), counted as the client's error."
    for path, body, ctype, status, message in BAD: assert_refused(server, path, body, ctype, status, message)
    text = server.get("/metrics").text
    client_errors = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("cora_gnn_request_errors_total{kind=\"client\""))
    assert client_errors >= len(BAD) and 'kind="server"' not in text


@pytest.mark.slow
def test_concurrent_predictions_leave_exactly_one_row_each(server):
    n = 240
    def call(i):
        return server.post("/api/v1/predict", json={"index": i}, headers={"X-Request-ID": f"conc-{i}"}).json()
    with ThreadPoolExecutor(16) as ex: out = list(ex.map(call, range(n)))
    assert all(o["logged"] for o in out)
    rows = read_log(server.log_db)
    rows = rows[rows.request_id.str.startswith("conc-")]
    assert len(rows) == n and rows.request_id.nunique() == n
    assert sorted(rows.node_index.astype(int)) == list(range(n))
    assert (rows.set_index("node_index").class_id.sort_index().tolist()
            == [o["predictions"][0]["class_id"] for o in out])


@pytest.mark.slow
def test_killing_the_server_loses_no_acknowledged_row(start_server, registry, tmp_path):
    s = start_server("--runs", registry[1], "--log-db", tmp_path / "log.db")
    def call(i):
        r = s.post("/api/v1/predict", json={"indices": [i, i + 1]}, headers={"X-Request-ID": f"kill-{i}"})
        return r.json()["logged"]
    with ThreadPoolExecutor(8) as ex: acked = [i for i, ok in zip(range(150), ex.map(call, range(150))) if ok]
    s.stop(signal.SIGKILL)  # no shutdown, no flush
    assert s.proc.returncode == -signal.SIGKILL and len(acked) == 150
    rows = read_log(tmp_path / "log.db")
    assert len(rows) == 2 * len(acked)
    assert set(rows.request_id) == {f"kill-{i}" for i in acked}


@pytest.mark.slow
def test_health_ready_and_drift(server):
    assert server.get("/health").json() == {"status": "ok"}
    assert server.get("/ready").json() == {"status": "ready", "checks": {"model": True, "prediction_log": True, "not_draining": True}}
    r = server.get("/drift")
    assert r.status_code == 404 and "no drift report yet" in r.json()["detail"]
    server.drift_dir.mkdir(parents=True, exist_ok=True)
    (server.drift_dir / "report.html").write_text("<html><body>drift report</body></html>")
    r = server.get("/drift")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html") and "drift report" in r.text


@pytest.mark.slow
def test_docs_and_openapi(server):
    spec = server.get("/openapi.json").json()
    assert {"/api/v1/predict", "/api/v1/predict/paper", "/info", "/health", "/ready", "/metrics", "/drift"} <= set(spec["paths"])
    assert server.get("/docs").status_code == 200


@pytest.mark.parametrize("damage,message", [
    (lambda p: p.write_bytes(b"garbage"), "is not a readable checkpoint"),
    (lambda p: p.write_bytes(p.read_bytes()[:1000]), "is not a readable checkpoint"),
    ("fingerprint", "was trained on a graph with fingerprint"),
])
@pytest.mark.slow
def test_unusable_checkpoint_stops_startup_with_the_reason(refuse, cli_env, free_port, registry, tmp_path, damage, message):
    bad = tmp_path / "bad.pt"
    bad.write_bytes((registry[1] / "gcn" / "checkpoint.pt").read_bytes())
    if damage == "fingerprint":
        ck = torch.load(bad, weights_only=True)
        ck["dataset"]["fingerprint"] = "0" * 64
        torch.save(ck, bad)
    else: damage(bad)
    r = refuse("serve", "--checkpoint", bad, "--port", free_port(), "--log-db", tmp_path / "l.db", env=cli_env)
    assert r.exit_code == 1 and "cannot start the service" in r.stderr + r.stdout and message in r.stderr + r.stdout
    assert "Traceback" not in r.stderr + r.stdout


@pytest.mark.slow
def test_missing_checkpoint_and_unwritable_log(refuse, cli_env, registry, tmp_path):
    r = refuse("serve", "--checkpoint", tmp_path / "none.pt", env=cli_env)
    assert r.exit_code == 1 and "no checkpoint at" in r.stderr
    (tmp_path / "file").write_text("")
    r = refuse("serve", "--runs", registry[1], "--log-db", tmp_path / "file" / "log.db", env=cli_env)
    assert r.exit_code == 1 and "cannot open the prediction log" in r.stderr


def test_metrics_count_what_was_sent(predictor, tmp_path):
    with TestClient(create_app(ServeConfig(log_db=str(tmp_path / "log.db")), predictor)) as c:
        for body in ({"index": 1}, {"indices": [2, 3, 4]}, {"index": 5}):
            assert c.post("/api/v1/predict", json=body).status_code == 200
        assert c.post("/api/v1/predict/paper", json={"words": [3, 8], "cites": [1]}).status_code == 200
        for body in ({"index": -1}, {"index": "x"}):
            assert c.post("/api/v1/predict", json=body).status_code == 422
        text = c.get("/metrics").text
    def value(line_start):
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start))
    assert value('cora_gnn_requests_total{method="POST",route="/api/v1/predict",status="200"}') == 3
    assert value('cora_gnn_requests_total{method="POST",route="/api/v1/predict",status="422"}') == 2
    assert value('cora_gnn_request_errors_total{kind="client",route="/api/v1/predict"}') == 2
    assert value('cora_gnn_predictions_total{class_name=') == 6
    assert sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("cora_gnn_predictions_total") and 'endpoint="paper"' in line) == 1
    assert value("cora_gnn_prediction_log_rows_total") == 6
    assert value('cora_gnn_request_duration_seconds_count{route="/api/v1/predict"}') == 5
    assert 'cora_gnn_model_info{checkpoint_sha256="' in text and 'model="gcn",run_id="gcn"' in text


def test_traces_carry_primitive_attributes(predictor, tmp_path):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with TestClient(create_app(ServeConfig(log_db=str(tmp_path / "log.db")), predictor, tracer_provider=provider)) as c:
        assert c.post("/api/v1/predict", json={"index": 7}).status_code == 200
    spans = exporter.get_finished_spans()
    server_span = next(s for s in spans if s.attributes.get("cora_gnn.endpoint") == "node")
    assert server_span.attributes["cora_gnn.predictions"] == 1 and server_span.attributes["cora_gnn.logged"] is True
    assert server_span.attributes["cora_gnn.class_id"] == predictor.nodes[7]["class_id"]
    assert any(s.attributes.get("http.route") == "/api/v1/predict" for s in spans)
    for s in spans:
        for v in s.attributes.values():
            assert isinstance(v, (str, bool, int, float)) or (isinstance(v, tuple) and all(isinstance(x, (str, bool, int, float)) for x in v))


def test_a_failed_log_write_is_counted_and_not_acknowledged(predictor, tmp_path):
    import sqlite3
    with TestClient(create_app(ServeConfig(log_db=str(tmp_path / "log.db")), predictor)) as c:
        sqlite3.connect(tmp_path / "log.db").execute("DROP TABLE predictions")
        r = c.post("/api/v1/predict", json={"index": 1})
        assert r.status_code == 200 and r.json()["logged"] is False
        assert "cora_gnn_prediction_log_failures_total 1.0" in c.get("/metrics").text
        assert c.get("/ready").status_code == 200  # the database itself is still writable


@pytest.mark.slow
def test_two_workers_share_metrics(start_server, cli_env, registry, tmp_path):
    "Two workers count into one set of metrics, kept in a temporary folder the service makes and removes when it stops."
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**{k: v for k, v in cli_env.items() if k != "CORA_GNN_THREADS"}, "PROMETHEUS_MULTIPROC_DIR": "", "TMPDIR": str(tmp)}
    s = start_server("--runs", registry[1], "--log-db", tmp_path / "log.db", "--workers", "2", env=env)
    metrics = lambda: list(tmp.glob("cora-gnn-metrics-*"))
    assert len(metrics()) == 1
    assert s.get("/info").json()["threads"] == max(1, os.cpu_count() // 2)  # no --threads: the cores shared out between the workers
    for i in range(20): assert s.post("/api/v1/predict", json={"index": i}).json()["logged"]
    text = s.get("/metrics").text
    total = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                if line.startswith('cora_gnn_requests_total{method="POST",route="/api/v1/predict",status="200"}'))
    assert total == 20
    assert len(read_log(tmp_path / "log.db")) == 20
    assert s.stop() == 0 and metrics() == []


def test_a_run_written_without_the_estimator_serves_the_recorded_p_correct(registry, cora, tmp_path):
    "`fit` then `save_run` (no estimator recorded) served: fitted at load, said in /info, the same `p_correct` as the CLI's run."
    from cora_gnn.hparams import TrainConfig
    from cora_gnn.runs import save_run
    from cora_gnn.train import fit
    save_run(fit(TrainConfig("gcn", seed=0), cora, progress=False), tmp_path / "bare", "script")
    answers = {}
    for name, ckpt in (("recorded", registry[1] / "gcn"), ("bare", tmp_path / "bare")):
        cfg = ServeConfig(checkpoint=str(ckpt / "checkpoint.pt"), runs=str(tmp_path), log_db=str(tmp_path / f"{name}.db"))
        with TestClient(create_app(cfg)) as c:
            nodes = c.post("/api/v1/predict", json={"indices": [0, 5, 99]}).json()["predictions"]
            paper = c.post("/api/v1/predict/paper", json={"words": [19, 81, 146], "cites": [0, 633]}).json()["predictions"]
            answers[name] = c.get("/info").json()["estimator"], [p["p_correct"] for p in nodes + paper], [p["confidence"] for p in nodes + paper]
    assert (answers["recorded"][0], answers["bare"][0]) == ("recorded with the run", "fitted at load")
    assert answers["bare"][1] == pytest.approx(answers["recorded"][1], abs=1e-4)  # the two fits differ in the last digits only
    assert answers["bare"][1] != pytest.approx(answers["bare"][2], abs=1e-3)  # and p_correct is not the plain confidence
