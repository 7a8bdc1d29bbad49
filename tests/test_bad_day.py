"""The service on a bad day: each fault made for real against `cora-gnn serve` on loopback (sustained load, a full
tmpfs, a second connection holding the log's lock, a CPU burner, a checkpoint with NaN weights, raw sockets), and the
answer the service must give."""
import itertools
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import pytest
import torch

from cora_gnn.files import sha256, write_json
from cora_gnn.logread import read_log
from conftest import unmeasured

pytestmark = pytest.mark.slow  # every test here starts a server; those marked alone time its answers under a fault

TOKEN = "bad-day-token"


def strict(r:httpx.Response):
    "The body of `r` read by a strict JSON parser: NaN and Infinity are not JSON."
    def refuse(const): raise AssertionError(f"{const} in the body of {r.request.url}")
    return json.loads(r.text, parse_constant=refuse)


def predict(s, rid=None, **body):
    headers = {"X-Request-ID": rid} if rid else {}
    return s.post("/api/v1/predict" + ("/paper" if "cites" in body else ""), json=body or {"index": 0}, headers=headers)


@pytest.fixture(scope="module")
def server(cli_env, registry, server_cls, tmp_path_factory):
    "One server for the tests that change nothing it serves, with short request bounds."
    tmp = tmp_path_factory.mktemp("bad-day")
    env = {**cli_env, "CORA_GNN_READ_TIMEOUT": "1", "CORA_GNN_KEEP_ALIVE": "1", "CORA_GNN_ADMIN_TOKEN": TOKEN}
    s = server_cls(env, "--runs", registry[1], "--log-db", tmp / "log.db")
    s.log_db = tmp / "log.db"
    yield s
    s.stop()


def test_the_wal_stays_bounded_under_sustained_load(start_server, cli_env, registry, tmp_path):
    s = start_server("--runs", registry[1], "--log-db", tmp_path / "log.db", env={**cli_env, "CORA_GNN_LOG_WAL_MB": "2"})
    wal, sizes = tmp_path / "log.db-wal", []
    hey = subprocess.Popen(["hey", "-z", "8s", "-c", "8", "-m", "POST", "-T", "application/json", "-d", '{"index": 0}',
                            s.url + "/api/v1/predict"], stdout=subprocess.PIPE, text=True)
    while hey.poll() is None:
        sizes.append(wal.stat().st_size / 2**20 if wal.exists() else 0)
        time.sleep(0.05)
    assert "[200]" in hey.stdout.read()
    rows = len(read_log(tmp_path / "log.db"))
    assert rows > 2000, rows  # sustained writing: before the bound, 5 s of it grew the WAL past 100 MB
    assert max(sizes) < 8, (max(sizes), rows)  # 2 MB, and what a tenth of a second of writing adds


@contextmanager
def tmpfs(path:Path, size:str):
    "A tmpfs of `size` mounted at `path` (needs root, or sudo without a password), unmounted after."
    path.mkdir()
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    r = subprocess.run([*sudo, "mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, f"this test mounts a small tmpfs to fill it (root or passwordless sudo): {r.stderr}"
    try: yield path
    finally: subprocess.run([*sudo, "umount", "-l", str(path)], check=True)


def fill(disk:Path) -> Path:
    "Write a file on `disk` until it is full."
    with open(disk / "filler", "wb") as f:
        try:
            while True: f.write(b"\0" * 65536); f.flush()
        except OSError: pass
    return disk / "filler"


def test_a_full_disk_makes_the_service_unready_and_stops_its_start(start_server, cli, cli_env, registry, tmp_path, free_port):
    env = {**cli_env, "CORA_GNN_LOG_MIN_FREE_MB": "1"}
    with tmpfs(tmp_path / "disk", "6m") as disk:
        s = start_server("--runs", registry[1], "--log-db", disk / "log.db", env=env)
        assert strict(predict(s))["logged"] is True
        filler = fill(disk)
        r = s.get("/ready")
        assert (r.status_code, strict(r)["checks"]["prediction_log"]) == (503, False)
        assert "under the floor of 1 MB" in strict(r)["prediction_log"]
        assert s.get("/health").status_code == 200
        assert strict(predict(s))["logged"] is False
        assert "cora_gnn_prediction_log_failures_total 1.0" in s.get("/metrics").text
        filler.unlink()
        assert s.get("/ready").status_code == 200 and strict(predict(s))["logged"] is True
        s.stop()
        fill(disk)
        r = cli("serve", "--runs", registry[1], "--log-db", disk / "log.db", "--port", free_port(), env=env, timeout=120)
        assert r.returncode != 0 and "cannot write the prediction log" in r.stderr and "under the floor" in r.stderr, r.stderr


@pytest.mark.alone
def test_a_held_lock_delays_only_the_log_writes(start_server, cli_env, registry, tmp_path):
    s = start_server("--runs", registry[1], "--log-db", tmp_path / "log.db", env={**cli_env, "CORA_GNN_LOG_WAIT": "0.3"})
    answered, stop = [], threading.Event()
    def send(k):
        with httpx.Client(base_url=s.url, timeout=30) as c:
            for i in itertools.count():
                if stop.is_set(): return
                t, rid = time.perf_counter(), f"held-{k}-{i}"
                logged = strict(c.post("/api/v1/predict", json={"index": i % 100}, headers={"X-Request-ID": rid}))["logged"]
                answered.append((rid, logged, time.perf_counter() - t))
    with closing(sqlite3.connect(tmp_path / "log.db", isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # what a sqlite3 shell, a backup or a VACUUM holds
        senders = [threading.Thread(target=send, args=(k,)) for k in range(4)]
        for t in senders: t.start()
        health = []
        for _ in range(10):
            t = time.perf_counter(); assert s.get("/health").status_code == 200; health.append(time.perf_counter() - t)
            time.sleep(0.1)
        t = time.perf_counter()
        r = s.get("/ready")
        assert (r.status_code, strict(r)["prediction_log"]) == (503, "OperationalError: database is locked")
        assert time.perf_counter() - t < 2
        other.execute("ROLLBACK")
    time.sleep(1)
    stop.set()
    for t in senders: t.join()
    assert max(health) < 0.25, health  # before: 9 s, the commit waiting on the event loop
    assert max(seconds for *_, seconds in answered) < 1.5, answered  # the 0.3 s wait, and the work
    assert {logged for _, logged, _ in answered} == {False, True}  # refused while the lock was held, logged after
    assert s.get("/ready").status_code == 200
    logged = set(read_log(tmp_path / "log.db").request_id)
    assert all(rid in logged for rid, ok, _ in answered if ok)  # nothing acknowledged is missing


@pytest.mark.alone
def test_workers_start_and_serve_beside_a_cpu_burner(start_server, registry, tmp_path):
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"], env=unmeasured(os.environ))  # load 2N for N = 2
               for _ in range(4)]  # unmeasured: killed, a burner left coverage an empty data file
    try:
        s = start_server("--runs", registry[1], "--log-db", tmp_path / "log.db", "--workers", "2", timeout=240)
        assert all(strict(predict(s))["predictions"][0]["index"] == 0 for _ in range(20))
    finally:
        for b in burners: b.kill()
    s.stop()
    assert "died" not in s.output(), s.output()


def nan_run(runs:Path, name:str) -> Path:
    "A copy of run `gcn` of `runs` as `name`, its weights NaN, its recorded hash matching (as if trained that way)."
    shutil.copytree(runs / "gcn", runs / name)
    ck = torch.load(runs / name / "checkpoint.pt", weights_only=True)
    for v in ck["state_dict"].values(): v.fill_(float("nan"))
    torch.save(ck, runs / name / "checkpoint.pt")
    record = json.loads((runs / name / "run.json").read_text())
    write_json(runs / name / "run.json", {**record, "checkpoint_sha256": sha256(runs / name / "checkpoint.pt")})
    return runs / name / "checkpoint.pt"


def test_a_checkpoint_with_nan_weights_is_refused_at_start_promote_and_reload(start_server, refuse, invoke, cli_env, registry, tmp_path,
                                                                              free_port):
    runs = tmp_path / "runs"
    shutil.copytree(registry[1], runs)
    ckpt = nan_run(runs, "nan")
    r = refuse("serve", "--checkpoint", ckpt, "--log-db", tmp_path / "log.db", "--port", free_port(), env=cli_env)
    assert r.exit_code != 0 and "not finite (NaN or infinity)" in r.stderr, r.stderr
    r = invoke("promote", "nan", "--runs", runs, env=cli_env)
    assert r.exit_code != 0 and "not finite" in r.stderr, r.stderr
    s = start_server("--runs", runs, "--log-db", tmp_path / "log.db", env={**cli_env, "CORA_GNN_ADMIN_TOKEN": TOKEN})
    write_json(runs / "promoted.json", {"run": "nan", "checkpoint_sha256": sha256(ckpt), "promoted": "by hand"})
    r = s.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 409 and "not finite" in strict(r)["detail"] and "still serving run gcn" in strict(r)["detail"]
    answer = strict(predict(s))
    assert (answer["run_id"], answer["logged"]) == ("gcn", True) and 0 < answer["predictions"][0]["confidence"] <= 1


def exchange(s, raw:bytes, pause:float=0) -> bytes:
    "Send `raw` to the server `s` on a socket of its own (then wait `pause` s), and read until the server closes it."
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as sock:
        sock.sendall(raw)
        time.sleep(pause)
        return b"".join(iter(lambda: sock.recv(65536), b""))


@pytest.mark.parametrize("what, raw, status", [
    ("huge header", b"GET /health HTTP/1.1\r\nhost: x\r\nx-request-id: " + b"a" * 1_000_000 + b"\r\n\r\n", b"431"),
    ("many headers", b"GET /health HTTP/1.1\r\n" + b"".join(b"x-h%d: 1\r\n" % i for i in range(200)) + b"\r\n", b"431"),
    ("long target", b"GET /health?" + b"q" * 10_000 + b" HTTP/1.1\r\nhost: x\r\n\r\n", b"414"),
    ("slow body", b"POST /api/v1/predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n"
                  b'{"index": 0', b"408"),
])
def test_every_part_of_a_request_is_bounded(server, what, raw, status):
    t = time.perf_counter()
    answer = exchange(server, raw)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split()[1] == status and json.loads(body)["detail"], (what, answer[:200])
    assert time.perf_counter() - t < 5, what
    assert server.get("/health").status_code == 200


def test_an_idle_connection_is_closed(server):
    t = time.perf_counter()
    assert exchange(server, b"") == b"" and time.perf_counter() - t < 4  # CORA_GNN_KEEP_ALIVE=1


@pytest.mark.parametrize("trusted", [False, True])
def test_the_rate_limit_trusts_forwarded_for_only_from_named_proxies(start_server, registry, tmp_path, trusted):
    args = ["--forwarded-allow-ips", "127.0.0.1"] if trusted else []
    s = start_server("--runs", registry[1], "--log-db", tmp_path / "log.db", "--rate-limit", "5/minute", *args)
    codes = [predict_from(s, f"10.0.{i}.{random.randint(1, 254)}") for i in range(20)]
    assert codes == [200] * 20 if trusted else (codes.count(200), codes.count(429)) == (5, 15), codes


def predict_from(s, client:str) -> int:
    return s.post("/api/v1/predict", json={"index": 0}, headers={"X-Forwarded-For": client}).status_code


def test_a_reused_request_id_is_refused_and_feedback_finds_its_one_prediction(server):
    first = strict(predict(server, "reused", index=3))
    second = predict(server, "reused", index=4)
    assert second.status_code == 409 and "request id 'reused' is already in the prediction log" in strict(second)["detail"]
    truth = (first["predictions"][0]["class_id"] + 1) % len(first["predictions"][0]["probabilities"])
    r = server.post("/api/v1/feedback", json={"request_id": "reused", "item": 0, "class_id": truth},
                    headers={"Authorization": f"Bearer {TOKEN}"})
    assert (r.status_code, strict(r)["predicted"], strict(r)["correct"]) == (201, first["predictions"][0]["class_id"], False)
    assert read_log(server.log_db).request_id.tolist().count("reused") == 1


def test_features_that_overflow_are_read_or_refused_never_zeroed(server, cora):
    n = cora.num_features
    big = strict(predict(server, cites=[0], features=[3e38] * n))["predictions"][0]
    every_word = strict(predict(server, cites=[0], words=list(range(n))))["predictions"][0]
    assert big["probabilities"] == every_word["probabilities"]  # 3e38 each, normalised: every word, as often
    r = predict(server, cites=[0], features=[1e308] * n)
    assert r.status_code == 422 and "their sum is not a finite number" in strict(r)["detail"]


def parent(pid:int) -> int|None:
    "The parent process of `pid` (from /proc; the command name may hold spaces and parentheses), None if it is gone."
    try: return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError: return None


@contextmanager
def frozen(pg):
    "Every process of the PostgreSQL server `pg` stopped (SIGSTOP), as a server that stops answering is; resumed after."
    main = int((pg.dir / "data" / "postmaster.pid").read_text().split()[0])
    procs = [main] + [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and parent(int(p.name)) == main]
    for pid in procs: os.kill(pid, signal.SIGSTOP)
    try: yield
    finally:
        for pid in procs: os.kill(pid, signal.SIGCONT)


@pytest.mark.alone
def test_a_postgresql_that_stops_answering_delays_only_the_log_writes(start_server, cli_env, registry, postgres, pg_url):
    s = start_server("--runs", registry[1], "--log-db", pg_url, env={**cli_env, "CORA_GNN_LOG_WAIT": "0.5"})
    assert strict(predict(s))["logged"] is True
    with frozen(postgres):
        t = time.perf_counter()
        assert strict(predict(s))["logged"] is False and time.perf_counter() - t < 2
        t = time.perf_counter()
        assert s.get("/health").status_code == 200 and time.perf_counter() - t < 0.25
        t = time.perf_counter()
        r = s.get("/ready")
        assert r.status_code == 503 and strict(r)["checks"]["prediction_log"] is False, r.text  # pool timeout, or no answer
        assert time.perf_counter() - t < 3
    deadline = time.time() + 30
    while s.get("/ready").status_code != 200 and time.time() < deadline: time.sleep(0.2)
    assert strict(predict(s, "after-pg"))["logged"] is True


def test_every_answer_is_strict_json(server):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    calls = [("GET", "/health", None, {}, 200), ("GET", "/ready", None, {}, 200), ("GET", "/info", None, {}, 200),
             ("GET", "/openapi.json", None, {}, 200), ("GET", "/nope", None, {}, 404),
             ("POST", "/api/v1/predict", {"indices": [0, 1, 2]}, {}, 200), ("POST", "/api/v1/predict", {"index": -1}, {}, 422),
             ("POST", "/api/v1/predict/paper", {"words": [1, 2], "cites": [0]}, {}, 200),
             ("POST", "/api/v1/predict/paper", {"features": [0.0] * 3}, {}, 422),
             ("POST", "/api/v1/explain", {"index": 0, "top": 3}, auth, 200), ("POST", "/api/v1/explain", {"index": 0}, {}, 401),
             ("POST", "/api/v1/feedback", {"request_id": "never", "class_id": 0}, auth, 404),
             ("POST", "/admin/reload", None, auth, 200)]
    for method, path, body, headers, status in calls:
        r = httpx.request(method, server.url + path, json=body, headers=headers, timeout=60)
        assert r.status_code == status and strict(r), (path, r.status_code, r.text[:300])
    r = httpx.post(server.url + "/api/v1/predict", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in strict(r)["detail"]
