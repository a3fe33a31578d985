"""The training fast paths compute exactly what Brevitas computes: values and gradients,
bit for bit, for single quantizers and for whole models over several optimizer steps
(including the runtime-statistics phase of the shared integer quantizer)."""

import copy

import pytest
import torch
import torch.nn.functional as F

from groupnet.models import create_model
from groupnet.models.blocks import set_fast_training
from groupnet.models.quant import (binary_act, int_quant_ste, shared_int_act, sign_ste,
                                   ternary_act, ternary_ste)


def _inputs(seed=0, shape=(64, 8, 5, 5), spread=2.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * spread
    # exact ties and the clamp boundaries are where implementations differ
    x.view(-1)[:6] = torch.tensor([0.0, -0.0, 1.0, -1.0, 0.5, -0.5])
    return x


def test_sign_ste_equals_brevitas_binary_act():
    ref_q = binary_act().train()
    x1 = _inputs().requires_grad_()
    x2 = x1.detach().clone().requires_grad_()
    g = torch.randn(x1.shape)
    y1, y2 = ref_q(x1), sign_ste(x2)
    assert torch.equal(y1, y2)
    (y1 * g).sum().backward()
    (y2 * g).sum().backward()
    assert torch.equal(x1.grad, x2.grad)


@pytest.mark.parametrize("spread", [0.7, 2.0])
def test_ternary_ste_equals_brevitas_2_bit_act(spread):
    """The w1a2 / w2a2 activation: ties at +-0.5 and +-1.5 included."""
    ref_q = ternary_act().train()
    x1 = _inputs(spread=spread).requires_grad_()
    x1.data.view(-1)[6:8] = torch.tensor([1.5, -1.5])
    x2 = x1.detach().clone().requires_grad_()
    g = torch.randn(x1.shape)
    y1, y2 = ref_q(x1), ternary_ste(x2)
    assert torch.equal(y1, y2)
    (y1 * g).sum().backward()
    (y2 * g).sum().backward()
    assert torch.equal(x1.grad, x2.grad)


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_int_quant_ste_equals_brevitas(bits):
    ref_q = shared_int_act(bits, 80.0).train()
    fast_q = copy.deepcopy(ref_q)
    # 3 steps: runtime statistics (steps 0-1), the switch to the learned value, learning
    ref_q.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl.collect_stats_steps = 2
    fast_q.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl.collect_stats_steps = 2
    for step in range(4):
        x1 = _inputs(step).requires_grad_()
        x2 = x1.detach().clone().requires_grad_()
        g = torch.randn(x1.shape, generator=torch.Generator().manual_seed(100 + step))
        y1, y2 = ref_q(x1), int_quant_ste(fast_q, x2)
        assert torch.equal(y1, y2), f"values differ at step {step}"
        (y1 * g).sum().backward()
        (y2 * g).sum().backward()
        assert torch.equal(x1.grad, x2.grad), f"input gradients differ at step {step}"
        p1 = dict(ref_q.named_parameters())
        p2 = dict(fast_q.named_parameters())
        for name in p1:
            a, b = p1[name].grad, p2[name].grad
            assert (a is None) == (b is None), name
            if a is not None:
                assert torch.equal(a, b), f"{name} gradient differs at step {step}"
                with torch.no_grad():      # move the scale, as an optimizer would
                    p1[name] -= 0.1 * a
                    p2[name] -= 0.1 * b
                p1[name].grad = p2[name].grad = None


@pytest.mark.parametrize("variant", ["test_groupnet_cnv", "test_groupnet_cnv_sg",
                                     "test_groupnet_resnet", "test_bnn_cnv", "test_cnv_w1a2",
                                     "test_cnv_w2a2", "test_abc_cnv"])
def test_fast_training_steps_equal_brevitas(variant):
    """A few Adam steps with and without the fast paths give identical weights."""
    torch.manual_seed(0)
    ref = create_model(variant).train()
    fast = copy.deepcopy(ref)
    set_fast_training(ref, False)
    set_fast_training(fast, True)
    opts = [torch.optim.Adam(m.parameters(), lr=1e-2) for m in (ref, fast)]
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        x = torch.randint(0, 256, (16, 1, 28, 28), generator=g).float()
        y = torch.randint(0, 10, (16,), generator=g)
        for model, opt in zip((ref, fast), opts):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    for (name, a), b in zip(ref.state_dict().items(), fast.state_dict().values()):
        assert torch.equal(a, b), f"{variant}: {name} differs after 3 steps"
    ref.eval(), fast.eval()
    x = torch.randint(0, 256, (8, 1, 28, 28), generator=g).float()
    assert torch.equal(ref(x), fast(x))
