"""Smoke tests over every registered variant, and the hardware-faithfulness invariants."""

import math

import pytest
import torch
from brevitas.nn import QuantConv2d, QuantLinear

from groupnet.models import UnknownModelError, create_model, list_models
from groupnet.models.blocks import (Group, Layer, ResidualGroup, SharedInt, Sign, SoftGate,
                                   TransitionGroup)

from ..conftest import set_gates


@pytest.mark.parametrize("name", list_models())
def test_forward_backward(name):
    model = create_model(name)
    x = torch.randint(0, 256, (2, *model.input_shape)).float()
    out = model(x)
    task = getattr(model, "task", "classification")
    if task == "classification":
        assert out.shape == (2, 10)
    else:                        # segmentation / detection: per-cell maps, stride 4 / 8
        assert out.dim() == 4 and out.shape[0] == 2
    out.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads[:3])
    model.eval()
    assert torch.isfinite(model(x)).all()


def _binary_variants():
    """The +-1 networks (the value approximations have their own test below)."""
    return [n for n in list_models() if not n.startswith("fp_") and "abc" not in n
            and not n.endswith(("w1a2", "w2a2"))]


@pytest.mark.parametrize("name", _binary_variants())
def test_weights_and_activations_are_pm1(name, fmnist_test):
    model = create_model(name).eval()
    for mod in model.modules():
        if isinstance(mod, (QuantConv2d, QuantLinear)):
            values = mod.quant_weight().value.unique().tolist()
            assert set(values) <= {-1.0, 1.0}, f"{name}: weights {values[:5]}"
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(o.detach()))
             for m in model.modules() if isinstance(m, Sign)]
    if getattr(model, "task", "classification") == "classification":
        x = torch.from_numpy(fmnist_test[0][:8]).float()
    else:
        x = torch.randint(0, 256, (4, *model.input_shape)).float()
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    assert seen
    for out in seen:
        assert set(out.unique().tolist()) <= {-1.0, 1.0}


def test_branches_and_integer_aggregation(fmnist_test):
    model = create_model("groupnet_cnv_k4", width=1 / 16).eval()
    groups = [m for m in model.modules() if isinstance(m, Group)]
    assert len(groups) == 4 and all(len(g.branches) == 4 for g in groups)
    # every branch output goes through ONE shared quantizer -> one power-of-two scale
    for g in groups:
        scale = g.aggregate.quant.act_quant.scale()
        assert torch.log2(scale).round() == torch.log2(scale)
        y = g.aggregate(torch.randn(64) * 3)
        ints = y / scale
        assert torch.equal(ints, ints.round()) and ints.min() >= -2 and ints.max() <= 1


def test_layerwise_ablation_has_one_group_per_layer():
    model = create_model("groupnet_cnv_k4_layerwise", width=1 / 16)
    groups = [m for m in model.modules() if isinstance(m, Group)]
    assert len(groups) == 7          # conv1..conv5, fc0, fc1
    assert all(len(b) == 2 for g in groups for b in g.branches)   # weight layer + BN


def test_resnet_shares_one_quantizer_per_stage():
    model = create_model("groupnet_resnet_k4", width=0.125)
    res = [m for m in model.modules() if isinstance(m, ResidualGroup)]
    trans = [m for m in model.modules() if isinstance(m, TransitionGroup)]
    assert len(res) == 4 and len(trans) == 1
    assert res[0].q is res[1].q and res[2].q is res[3].q is trans[0].q
    assert res[0].q is not res[2].q
    assert isinstance(res[0].q, SharedInt) and res[0].q.bit_width == 4


def test_k1_baseline_is_plain_binary():
    model = create_model("bnn_cnv")
    groups = [m for m in model.modules() if isinstance(m, Group)]
    assert all(g.k == 1 and g.aggregate is None for g in groups)


def test_overrides_and_config():
    model = create_model("groupnet_cnv_k4", k=3, width=0.125)
    assert model.config["k"] == 3 and model.config["variant"] == "groupnet_cnv_k4"
    with pytest.raises(TypeError, match="no option"):
        create_model("groupnet_cnv_k4", kk=3)


def test_unknown_model():
    with pytest.raises(UnknownModelError, match="groupnet list"):
        create_model("groupnet_vgg_k9")


def test_cifar_shape():
    model = create_model("test_groupnet_cnv", dataset="cifar10")
    assert model.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


# ------------------------------------------------------------ soft-gated connections
def test_soft_gates_connect_every_group_but_the_last():
    model = create_model("test_groupnet_cnv_sg", k=3)
    groups = [m for m in model.modules() if isinstance(m, Group)]
    assert [g.gates is not None for g in groups] == [True, True, True, False]
    assert all(len(g.gates) == 3 for g in groups[:3])
    out = model.eval()(torch.zeros(2, *model.input_shape))
    assert out.shape == (2, 10)


def test_soft_gate_levels_are_integers_with_a_gradient():
    gate = SoftGate()
    for theta in (-5.0, -0.6, 0.0, 0.3, 0.55, 5.0):
        with torch.no_grad():
            gate.theta.fill_(theta)
        n = gate.level()
        assert n.item() in (0.0, 1.0, 2.0) and n.item() == round(2 / (1 + math.exp(-theta)))
    gate.theta.grad = None
    gate.level().backward()                       # straight-through: d n / d theta != 0
    assert gate.theta.grad is not None and gate.theta.grad.abs() > 0


@pytest.mark.parametrize("level", [0, 1, 2])
def test_soft_gate_is_the_sign_of_an_integer_mix(level):
    """Training form g*b + (1-g)*y and the exported form give identical floats on
    power-of-two-scaled integers, and their sign is sign(n*b + (2-n)*y)."""
    gate = SoftGate()
    set_gates(gate, [level])
    torch.manual_seed(level)
    scale = 2.0 ** -3
    own = torch.randint(-2, 2, (4096,)).float() * scale              # one branch, INT2
    total = own + torch.randint(-6, 4, (4096,)).float() * scale      # the K=4 sum
    train_out = gate.train()(own, total)
    eval_out = gate.eval()(own, total)
    assert torch.equal(train_out, eval_out)
    ints = level * own / scale + (2 - level) * total / scale
    assert torch.equal(torch.where(eval_out >= 0, 1, -1), torch.where(ints >= 0, 1, -1))


def test_soft_gates_need_binary_branches():
    with pytest.raises(ValueError, match="K >= 2"):
        create_model("test_groupnet_cnv_sg", k=1)


def test_op_counts_equal_budget_pairs():
    """K=4 at half width costs the binary MACs of K=1 at full width (K (w/2)^2 = w^2)."""
    from groupnet.models.groupnet import op_counts
    k1_s = op_counts(create_model("bnn_cnv_s"))["binary"]
    # CNV at quarter width: convs 16-16-32-32-64-64 on 28/12/10/3/1 px outputs, FC 128-128-10
    by_hand = (28 * 28 * 16 * 16 + 12 * 12 * 32 * 16 + 10 * 10 * 32 * 32 + 3 * 3 * 64 * 32
               + 64 * 64) * 9 + 64 * 128 + 128 * 128 + 128 * 10
    assert k1_s == by_hand == 3_620_096
    h_k4 = op_counts(create_model("groupnet_cnv_h_k4"))["binary"]
    full_k1 = op_counts(create_model("bnn_cnv"))["binary"]
    assert abs(h_k4 - full_k1) / full_k1 < 1e-3
    assert op_counts(create_model("groupnet_cnv_s_k4"))["binary"] == pytest.approx(4 * k1_s,
                                                                                  rel=1e-3)


@pytest.mark.parametrize("name, weights", [("test_cnv_w1a2", {-1.0, 1.0}),
                                           ("test_cnv_w2a2", {-1.0, 0.0, 1.0})])
def test_finn_value_approximations_quantize_as_brevitas_examples(name, weights, fmnist_test):
    """CNV_1W2A / CNV_2W2A: 2-bit activations in {-1, 0, 1} between layers, weights
    binary (w1a2) or in {-1, 0, 1} (w2a2), scale 1."""
    model = create_model(name).eval()
    seen = set()
    for mod in model.modules():
        if isinstance(mod, (QuantConv2d, QuantLinear)):
            seen |= set(mod.quant_weight().value.unique().tolist())
    assert seen == weights
    acts = []
    hooks = [m.register_forward_hook(lambda m, i, o: acts.append(o.detach()))
             for m in model.modules() if isinstance(m, Sign)]
    model.train()            # batch statistics: non-trivial activations
    with torch.no_grad():
        model(torch.from_numpy(fmnist_test[0][:16]).float())
    for h in hooks:
        h.remove()
    values = set(torch.cat([a.flatten() for a in acts]).unique().tolist())
    assert values == {-1.0, 0.0, 1.0}


@pytest.mark.parametrize("m, n", [(2, 2), (3, 1), (1, 3)])
def test_abc_layer_trains_as_one_conv_and_evaluates_as_m_x_n_binary_convs(m, n):
    """The training path (one conv of the summed bases) and the eval path (M x N binary
    Brevitas layers, what is exported) give the same values; B_m are +-1."""
    from groupnet.models.abcnet import BinaryBases
    layer = BinaryBases(8, Layer(6), m, n)
    torch.manual_seed(0)
    acts = [torch.where(torch.randn(2, 8, 7, 7) >= 0, 1.0, -1.0) for _ in range(n)]
    trained = layer.train()(acts)
    evaluated = layer.eval()(acts)
    assert torch.equal(trained, evaluated)
    assert len(layer.pairs) == m * n
    for w in layer.base_weights():
        assert set(w.unique().tolist()) <= {-1.0, 1.0}
    out = layer.train()(acts)
    out.sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_abc_activation_shifts_learn():
    model = create_model("test_abc_cnv")
    x = torch.randint(0, 256, (4, *model.input_shape)).float()
    model(x).sum().backward()
    shifts = [p for name, p in model.named_parameters() if ".shifts." in f".{name}"]
    assert len(shifts) == 2 * 8 and any(p.grad.abs() > 0 for p in shifts)


def test_op_counts_of_value_approximations():
    """A w1a2 MAC is 2 binary MACs, w2a2 4, an M x N ABC-Net layer M*N, Group-Net K."""
    from groupnet.models.groupnet import op_counts
    k1 = op_counts(create_model("bnn_cnv_s"))
    assert op_counts(create_model("cnv_s_w1a2"))["binary"] == 2 * k1["binary"]
    assert op_counts(create_model("cnv_s_w2a2"))["binary"] == 4 * k1["binary"]
    assert op_counts(create_model("abc_cnv_s"))["binary"] == 4 * k1["binary"]
    assert op_counts(create_model("abc_cnv_s", m=3, n=1))["binary"] == 3 * k1["binary"]
    assert op_counts(create_model("abc_cnv_s"))["stem"] == k1["stem"]
