"The profiling helpers on a small graph: tables that add up, and a flame chart with a bar per operator."
import pytest
import torch

from cora_gnn.synth import random_graph
from cora_gnn.models import build_model
from cora_gnn.plots import plot_flame
from cora_gnn.profiling import epochs, op_profile, op_table, python_profile


@pytest.fixture(scope="module")
def graph():
    return random_graph(num_nodes=200, num_features=16, num_classes=4)


def test_op_table_shares_add_up(graph):
    prof = op_profile(build_model("gcn", 16, 4), graph, n=2)
    full = op_table(prof, top=10_000)
    assert full.share.sum() == pytest.approx(1.0) and full.self_ms.is_monotonic_decreasing
    assert "aten::mm" in set(full.op) or "aten::addmm" in set(full.op)
    assert len(op_table(prof, top=3)) == 3


def test_flame_chart_draws_every_operator(graph):
    with torch.profiler.profile() as prof: epochs(build_model("sage", 16, 4), graph, 1)
    fig = plot_flame(prof)
    cpu = [e for e in prof.events() if e.device_type.name == "CPU"]
    assert len(fig.axes[0].patches) == len(cpu) > 10


def test_python_profile_ranks_own_time():
    def slow(): return sum(i * i for i in range(200_000))
    df = python_profile(lambda: [slow() for _ in range(3)], top=5)
    assert len(df) == 5 and df.own_s.is_monotonic_decreasing
    assert df.function.str.contains("genexpr").any()
