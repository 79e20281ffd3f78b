"""Optimizer registry, weight-decay groups, schedules, linear scaling."""

import math

import pytest
import torch

from fer.errors import ConfigError
from fer.models import build_model
from fer.optim import OPTIMIZERS, create_optimizer, create_scheduler, param_groups, scaled_lr

STUDY_OPTIMIZERS = {"sgd", "sgd_momentum", "sgd_nesterov", "adam", "adamw", "rmsprop",
                    "adagrad", "adadelta"}


def test_registry_has_the_study_optimizers():
    assert set(OPTIMIZERS) == STUDY_OPTIMIZERS


@pytest.mark.parametrize("name", sorted(STUDY_OPTIMIZERS))
def test_each_optimizer_takes_a_step(name):
    model = torch.nn.Linear(4, 2)
    opt = create_optimizer(model, name, weight_decay=0.01)
    before = model.weight.detach().clone()
    model(torch.randn(8, 4)).square().mean().backward()
    opt.step()
    assert not torch.equal(before, model.weight)
    assert opt.param_groups[0]["lr"] == OPTIMIZERS[name].default_lr


def test_nesterov_and_momentum_are_set():
    model = torch.nn.Linear(2, 2)
    assert create_optimizer(model, "sgd_nesterov", momentum=0.8).defaults["nesterov"]
    assert create_optimizer(model, "sgd_momentum", momentum=0.8).defaults["momentum"] == 0.8


def test_weight_decay_skips_1d_params():
    model = build_model("test_efficientnet")
    decay, no_decay = param_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decay["params"])
    assert all(p.ndim <= 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def _lrs(name, total=100, warmup=0):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = create_scheduler(opt, name, total_steps=total, warmup_steps=warmup)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_schedules():
    assert set(_lrs("none")) == {1.0}
    step = _lrs("step")
    assert step[0] == 1.0 and math.isclose(step[60], 0.1) and math.isclose(step[90], 0.01)
    cosine = _lrs("cosine")
    assert cosine[0] == 1.0 and cosine[50] == pytest.approx(0.5, abs=0.02) and cosine[-1] < 0.01
    warm = _lrs("cosine", warmup=10)
    assert warm[0] == pytest.approx(0.1) and warm[9] == pytest.approx(1.0)
    assert all(a <= b for a, b in zip(warm[:10], warm[1:11]))


def test_linear_scaling_rule():
    assert scaled_lr(0.1, 256, 256, "linear") == 0.1
    assert scaled_lr(0.1, 1024, 256, "linear") == pytest.approx(0.4)
    assert scaled_lr(0.1, 1024, 256, "none") == 0.1
    with pytest.raises(ConfigError):
        scaled_lr(0.1, 1, 1, "sqrt")


# ------------------------------------------------------- --optimizer-impl --

@pytest.mark.parametrize("impl,key,value", [("forloop", "foreach", False),
                                            ("foreach", "foreach", True),
                                            ("fused", "fused", True)])
def test_optimizer_impl_reaches_torch(impl, key, value):
    from fer.optim import create_optimizer

    model = torch.nn.Linear(4, 2)
    opt = create_optimizer(model, "adam", impl=impl)
    assert opt.defaults[key] is value
    model(torch.randn(3, 4)).sum().backward()
    opt.step()  # and it steps (fused Adam runs on a CPU in the torch versions we support)


def test_an_implementation_torch_lacks_is_refused_by_name():
    from fer.errors import ConfigError
    from fer.optim import create_optimizer, impl_kwargs

    with pytest.raises(ConfigError, match=r"--optimizer-impl fused: .* no fused RMSprop .*"
                                          r"fused exists for .*adam"):
        create_optimizer(torch.nn.Linear(4, 2), "rmsprop", impl="fused")
    with pytest.raises(ConfigError, match="--optimizer-impl 'fast'"):
        impl_kwargs("adam", "fast")
    assert impl_kwargs("adam", "auto", capturable=True) == {"capturable": True}
    assert impl_kwargs("adam", "fused", capturable=True) == {"fused": True, "capturable": True}
    assert impl_kwargs("sgd", "auto", capturable=True) == {}  # SGD keeps no step count
