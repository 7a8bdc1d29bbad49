"""Explanations point at what matters (removal checks that can fail), agree between a node and the same node sent as a
new paper, and are served behind the bearer token, logged, with bad and over-cap requests refused."""
import random

import pytest

from cora_gnn.explain import MAX_STEPS, attributions, explain, hops_to, without
from cora_gnn.logread import read_log

TOKEN = "test-token-4f1c"


def cited_test_nodes(cora, predictor, least, n):
    "The first `n` test nodes linked to at least `least` papers."
    _, cites = predictor.graph_inputs(cora.test_mask.nonzero().view(-1).tolist())
    return [i for i, c in zip(cora.test_mask.nonzero().view(-1).tolist(), cites) if len(c) >= least][:n]


def test_top_cited_papers_matter_more_than_random_ones(cora, predictor):
    "Cutting off the two cited papers with the highest attribution lowers the prediction more than cutting two random ones."
    rng, top, rand = random.Random(0), [], []
    for i in cited_test_nodes(cora, predictor, 4, 60):
        g, c = predictor.neighbourhood(index=i), predictor.nodes[i]["class_id"]
        score = attributions(predictor.model, g, c).sum(1)
        cited = (hops_to(g.edge_index, len(g.x), g.target)[0] == 1).nonzero().view(-1).tolist()
        best = sorted(cited, key=lambda r: -score[r])[:2]
        p = predictor.nodes[i]["confidence"]
        top.append(p - without(predictor.model, g, c, rows=best, temperature=predictor.temperature))
        rand.append(p - without(predictor.model, g, c, rows=rng.sample(cited, 2), temperature=predictor.temperature))
    mean_top, mean_rand = sum(top) / len(top), sum(rand) / len(rand)
    print(f"{len(top)} test nodes: mean drop without the top 2 cited papers {mean_top:.3f}, without 2 random ones {mean_rand:.3f}")
    assert len(top) >= 30 and mean_top > 2 * mean_rand and mean_top > 0.05, (mean_top, mean_rand)


@pytest.mark.parametrize("method", ["saliency", "ig"])
def test_a_node_and_the_same_node_as_a_new_paper_agree(cora, predictor, method):
    "Explained as a node or re-sent as a new paper (its words and links), a node gets the same class and top cited paper."
    nodes = cited_test_nodes(cora, predictor, 2, 40)
    words, cites = predictor.graph_inputs(nodes)
    same = 0
    for i, w, c in zip(nodes, words, cites):
        a, b = explain(predictor, index=i, method=method, top=50), explain(predictor, words=w, cites=c, method=method, top=50)
        cited = lambda e: next(p["index"] for p in e.papers if p["hops"] == 1)
        same += (a.class_id, cited(a)) == (b.class_id, cited(b))
    assert same >= 0.9 * len(nodes), f"{same} of {len(nodes)} agree"


@pytest.fixture(scope="module")
def guarded(cli_env, registry, server_cls, tmp_path_factory):
    "The registry's GCN served with an admin token."
    tmp = tmp_path_factory.mktemp("explain")
    s = server_cls({**cli_env, "CORA_GNN_ADMIN_TOKEN": TOKEN}, "--runs", registry[1], "--log-db", tmp / "log.db")
    s.log_db = tmp / "log.db"
    yield s
    s.stop()


@pytest.mark.slow
def test_served_explanation_is_the_librarys_and_is_logged(guarded, predictor):
    r = guarded.post("/api/v1/explain", json={"index": 7, "top": 4}, headers={"Authorization": f"Bearer {TOKEN}", "X-Request-ID": "why-7"})
    assert r.status_code == 200, r.text
    got, want = r.json()["explanation"], explain(predictor, index=7, top=4).to_dict()
    assert [p["index"] for p in got["papers"]] == [p["index"] for p in want["papers"]]
    assert [w["word"] for w in got["words"]] == [w["word"] for w in want["words"]]
    assert r.json()["logged"] is True
    row = read_log(guarded.log_db, table="explanations").iloc[-1]
    assert (row.request_id, row.endpoint, row.node_index, row.method) == ("why-7", "node", 7, "saliency")


@pytest.mark.parametrize("headers, body, status, message", [
    ({}, {"index": 7}, 401, "Authorization: Bearer"),
    ({"Authorization": "Bearer wrong"}, {"index": 7}, 401, "Authorization: Bearer"),
    ({"Authorization": f"Basic {TOKEN}"}, {"index": 7}, 401, "Authorization: Bearer"),
    ("token", {"index": 7, "method": "ig", "steps": MAX_STEPS + 1}, 422, f"steps: Input should be less than or equal to {MAX_STEPS}"),
    ("token", {"index": 7, "top": 500}, 422, "top: Input should be less than or equal to 50"),
    ("token", {"index": 7, "words": [1]}, 422, "not both"),
    ("token", {"index": 10**6}, 422, "index: 1000000 is out of range"),
    ("token", {"words": [1, 1], "cites": [0]}, 422, "words has duplicates"),
    ("token", {}, 422, "give `index` (a node of the graph) or a new paper"),
    ("token", {"words": [], "cites": []}, 422, "the paper has no words and no citations"),
])
@pytest.mark.slow
def test_explain_refuses_with_the_reason(guarded, headers, body, status, message):
    r = guarded.post("/api/v1/explain", json=body, headers={"Authorization": f"Bearer {TOKEN}"} if headers == "token" else headers)
    assert (r.status_code, message in r.json()["detail"]) == (status, True), r.text


@pytest.mark.slow
def test_without_a_token_explanations_are_off(start_server, registry, cli_env, tmp_path):
    env = {k: v for k, v in cli_env.items() if k != "CORA_GNN_ADMIN_TOKEN"}
    s = start_server("--runs", registry[1], "--log-db", tmp_path / "log.db", env=env)
    r = s.post("/api/v1/explain", json={"index": 7}, headers={"Authorization": "Bearer anything"})
    assert r.status_code == 403 and "CORA_GNN_ADMIN_TOKEN" in r.json()["detail"], r.text
    assert s.post("/api/v1/predict", json={"index": 7}).status_code == 200  # predictions stay open


def test_the_explain_command_prints_the_explanation_of_the_promoted_run(invoke, cli_env, registry, predictor):
    "`cora-gnn explain --node 1 --top 5` (in this process): the class, the top words and papers, the fidelity; both or neither refused."
    r = invoke("explain", "--node", 1, "--top", 5, "--runs", registry[1], env=cli_env)
    assert r.exit_code == 0, r.stderr
    e = explain(predictor, index=1, top=5)
    assert r.stdout.startswith(f"node 1: {e.class_name} ({e.confidence:.2f}), by ") and "top words" in r.stdout and "top papers" in r.stdout
    assert f"without the top {e.fidelity['words_removed']} words and {e.fidelity['papers_removed']} papers" in r.stdout
    r = invoke("explain", "--runs", registry[1], env=cli_env)
    assert r.exit_code == 2 and "give --node N or --paper JSON" in r.stderr, (r.exit_code, r.stderr)
