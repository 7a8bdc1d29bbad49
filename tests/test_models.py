import pytest
import torch

from cora_gnn.synth import random_graph
from cora_gnn.hparams import small_settings
from cora_gnn.models import MODELS, UnknownModelError, build_model, clear_cache


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("nodes,features,classes", [(7, 3, 2), (41, 17, 5)])
def test_output_shapes_follow_the_graph(name, nodes, features, classes):
    g = random_graph(nodes, features, classes, seed=nodes)
    m = build_model(name, g.num_features, len(g.class_names), **small_settings(name))
    out = m(g.x, g.edge_index)
    assert out.shape == (nodes, classes)
    out.sum().backward()  # every parameter is reachable from the output
    assert all(p.grad is not None for p in m.parameters())


@pytest.mark.parametrize("name", list(MODELS))
def test_sparse_input_gives_the_dense_answer(name):
    g = random_graph(50, 40, 4, seed=1)
    g.x = g.x * (torch.rand_like(g.x) < 0.1)
    m = build_model(name, 40, 4, **small_settings(name)).eval()
    with torch.no_grad():
        got = m(g.x, g.edge_index)
        m.sparse_input = False
        want = clear_cache(m)(g.x, g.edge_index)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_unknown_model_and_argument():
    with pytest.raises(UnknownModelError, match="choose one of"):
        build_model("transformer", 3, 2)
    assert build_model("gat", 3, 2, heads=2).conv1.heads == 2
