"""The deployment files (deploy/): valid YAML whose settings are the service's own (no Docker engine or Kubernetes
cluster on these machines, so they are checked, not run): probes on the service's endpoints, grace periods that cover
the drain, environment variables the service reads, secrets kept out of the files, and flags `cora-gnn serve` has."""
import ipaddress
import re
from dataclasses import fields

import pytest
import yaml
from conftest import ROOT

from cora_gnn.config import env_var
from cora_gnn.serve import ServeConfig
from cora_gnn.server import GRACE, ServerConfig

DEPLOY = ROOT / "deploy"
SETTINGS = {env_var(f.name) for cls in (ServeConfig, ServerConfig) for f in fields(cls)}


def seconds(v) -> float: return float(str(v).removesuffix("s"))


def test_compose_replicas_share_postgres_behind_a_balancer():
    c = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    svc = c["services"]["cora-gnn"]
    env = svc["environment"]
    assert set(env) <= SETTINGS, set(env) - SETTINGS
    assert env["CORA_GNN_LOG_DB"].startswith("postgresql://") and "${POSTGRES_PASSWORD}" in env["CORA_GNN_LOG_DB"]
    assert env["CORA_GNN_ADMIN_TOKEN"].startswith("${")  # from the environment, never written here
    assert "/ready" in " ".join(svc["healthcheck"]["test"])
    assert seconds(svc["stop_grace_period"]) >= float(env["CORA_GNN_DRAIN"]) + GRACE
    assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert re.search(r"set \$replicas cora-gnn;", nginx) and "proxy_pass http://$replicas:8000" in nginx
    assert c["services"]["lb"]["volumes"][0].startswith("./nginx.conf:")
    lb = c["services"]["lb"]["networks"]["default"]["ipv4_address"]
    assert env["CORA_GNN_FORWARDED_ALLOW_IPS"] == lb  # the balancer's X-Forwarded-For is trusted, and nobody else's


def test_kubernetes_probes_grace_and_secrets():
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / "cora-gnn.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"Deployment", "Service", "PodDisruptionBudget"}
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    (ctr,) = pod["containers"]
    assert ctr["readinessProbe"]["httpGet"]["path"] == "/ready" and ctr["livenessProbe"]["httpGet"]["path"] == "/health"
    env = {e["name"]: e for e in ctr["env"]}
    assert set(env) <= SETTINGS, set(env) - SETTINGS
    assert "valueFrom" in env["CORA_GNN_LOG_DB"] and "valueFrom" in env["CORA_GNN_ADMIN_TOKEN"]  # secrets, not values
    assert pod["terminationGracePeriodSeconds"] >= float(env["CORA_GNN_DRAIN"]["value"]) + GRACE
    assert ipaddress.ip_network(env["CORA_GNN_FORWARDED_ALLOW_IPS"]["value"]).is_private  # the ingress's pods, not "*"
    assert kinds["Deployment"]["spec"]["replicas"] > kinds["PodDisruptionBudget"]["spec"]["minAvailable"] >= 1
    assert kinds["Service"]["spec"]["selector"] == kinds["Deployment"]["spec"]["selector"]["matchLabels"]


@pytest.mark.slow
def test_deploy_commands_use_existing_flags(invoke):
    k8s = yaml.safe_load_all((DEPLOY / "k8s" / "cora-gnn.yaml").read_text())
    args = next(d for d in k8s if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["cora-gnn", "serve"]
    help_ = invoke("serve", "--help").stdout
    for flag in [a for a in args if a.startswith("--")] + ["--rate-limit", "--drain", "--log-db", "--forwarded-allow-ips"]:
        assert flag in help_, flag


def test_no_secret_values_in_deploy_files():
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not re.search(r"postgres(ql)?://[^:@\s]+:(?!\$\{|PASSWORD@)[^@\s]+@", text), path  # a literal password
            assert "CORA_GNN_ADMIN_TOKEN=" not in text.replace("CORA_GNN_ADMIN_TOKEN=$(", ""), path
