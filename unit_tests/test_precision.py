"""resolve_precision: scaler only for fp16, autocast dtype per name."""

import pytest
import torch

from fer.errors import ConfigError
from fer.precision import resolve_precision


@pytest.mark.parametrize("name,dtype,scaler", [
    ("fp32", None, False), ("amp_fp16", torch.float16, True), ("amp_bf16", torch.bfloat16, False),
])
def test_resolution(name, dtype, scaler):
    p = resolve_precision(name, "cpu")
    assert p.dtype == dtype and p.uses_scaler == scaler
    with p.autocast():
        out = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert out.dtype == (dtype or torch.float32)


def test_disabled_scaler_is_a_no_op():
    p = resolve_precision("fp32", "cpu")
    loss = torch.tensor(2.0, requires_grad=True)
    assert p.scaler.scale(loss) is loss


def test_unknown():
    with pytest.raises(ConfigError, match="--precision"):
        resolve_precision("int8", "cpu")
