"""Each intervention against its formula, computed independently in float64; R's orthonormality."""

from __future__ import annotations

import pytest
import torch

from reft.interventions import INTERVENTIONS, intervention_class
from reft.train import parameter_groups

D, R = 48, 6


def make(name: str, seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    return intervention_class(name)(D, R, **kwargs).eval()


def f64(t: torch.Tensor) -> torch.Tensor:
    return t.detach().double()


def reference(name: str, module, h: torch.Tensor) -> torch.Tensor:
    """The paper's formulas (Table 17 / eq. 2-3), written out with explicit matrices."""
    h = f64(h)
    if hasattr(module, "rotation"):
        rot = f64(module.rotation.weight)  # R, r×d
    src = module.learned_source
    if name in ("consreft", "lobireft"):
        b = f64(src)
    else:
        w, b = f64(src.weight), f64(src.bias)
        wh_b = h @ w.T + b
    if name == "loreft":
        return h + (wh_b - h @ rot.T) @ rot
    if name == "direft":
        return h + wh_b @ f64(module.proj_layer.weight)
    if name == "noreft":
        w2 = f64(module.proj_layer.weight)
        return h + (wh_b - h @ w2.T) @ w2
    if name == "orthdireft":
        return h + wh_b @ rot
    if name == "consreft":
        return h + (b - h @ rot.T) @ rot
    if name == "lobireft":
        return h + b @ rot
    raise AssertionError(name)


@pytest.mark.parametrize("name", sorted(INTERVENTIONS))
def test_matches_formula(name):
    module = make(name)
    h = torch.randn(5, 3, D)
    out = module(h)
    assert out.shape == h.shape and out.dtype == h.dtype
    torch.testing.assert_close(out.double(), reference(name, module, h), atol=1e-5, rtol=1e-5)
    assert (out - h).abs().max() > 1e-3, "non-identity init (pyreft): the edit is non-zero at step 0"


def test_noreft_bias_enters_the_difference():
    module = make("noreft", add_bias=True)
    h = torch.randn(4, D)
    w2, b2 = f64(module.proj_layer.weight), f64(module.proj_layer.bias)
    w1, b1 = f64(module.learned_source.weight), f64(module.learned_source.bias)
    expected = f64(h) + (f64(h) @ w1.T + b1 - f64(h) @ w2.T - b2) @ w2
    torch.testing.assert_close(module(h).double(), expected, atol=1e-5, rtol=1e-5)


def test_activation_applies_to_the_source():
    module = make("loreft", act_fn="relu")
    h = torch.randn(4, D)
    rot, w, b = f64(module.rotation.weight), f64(module.learned_source.weight), f64(module.learned_source.bias)
    expected = f64(h) + ((f64(h) @ w.T + b).relu() - f64(h) @ rot.T) @ rot
    torch.testing.assert_close(module(h).double(), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(INTERVENTIONS))
def test_parameter_count_and_state_are_order_d_r(name):
    module = make(name)
    per_paper = {"loreft": 2 * D * R + R, "direft": 2 * D * R + R, "noreft": 2 * D * R + R,
                 "orthdireft": 2 * D * R + R, "consreft": D * R + R, "lobireft": D * R + R}
    assert sum(p.numel() for p in module.parameters()) == per_paper[name]
    state = module.state_dict()
    assert sum(t.numel() for t in state.values()) == per_paper[name], "no hidden d×d buffer"
    assert all(t.numel() <= D * R for t in state.values())


def test_pyreft_class_names_are_aliases():
    assert intervention_class("NodireftIntervention") is intervention_class("direft")
    assert intervention_class("DireftIntervention") is intervention_class("orthdireft")
    assert intervention_class("LoreftIntervention") is intervention_class("loreft")
    with pytest.raises(ValueError, match="unknown intervention 'nope'"):
        intervention_class("nope")


def test_dropout_acts_on_the_output_and_eval_switches_it_off():
    module = make("loreft", dropout=0.5).train()
    h = torch.randn(64, D)
    out = module(h)
    assert 0.35 < (out == 0).float().mean() < 0.65, "pyreft: dropout zeroes the residual stream itself"
    module.eval()
    torch.testing.assert_close(module(h), module(h))
    assert (module(h) == 0).float().mean() < 0.01


def test_dropout_on_edit_keeps_the_residual():
    module = make("loreft", dropout=0.5, dropout_target="edit").train()
    h = torch.randn(64, D)
    edit = module(h) - h
    full_edit = make("loreft").eval()(h) - h
    kept = (edit != 0)
    torch.testing.assert_close(edit[kept], 2 * full_edit[kept], atol=1e-5, rtol=1e-4)


def test_bf16_weights_with_fp32_rotation():
    module = make("loreft", dtype="bfloat16")
    assert module.learned_source.weight.dtype == torch.bfloat16
    assert module.rotation.weight.dtype == torch.float32
    h = torch.randn(4, D, dtype=torch.bfloat16)
    assert module(h).dtype == torch.bfloat16
    module32 = make("loreft")  # pyreft crashes on an fp32 input with bf16 W; this casts
    assert module32(torch.randn(4, D, dtype=torch.bfloat16)).dtype == torch.bfloat16


def _adamw_steps(module, steps: int, weight_decay: float, all_in_decay: bool, fused: bool = False) -> None:
    groups = ([{"params": list(module.parameters()), "weight_decay": weight_decay}] if all_in_decay
              else parameter_groups(torch.nn.ModuleDict({"interventions": torch.nn.ModuleDict({"x": module})}),
                                    weight_decay))
    optimizer = torch.optim.AdamW(groups, lr=1e-2, fused=fused)
    target = torch.randn(32, D)
    h = torch.randn(32, D)
    for _ in range(steps):
        loss = (module(h) - target).pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


@pytest.mark.parametrize("fused", [False, True], ids=["foreach", "fused"])
@pytest.mark.parametrize("name", ["loreft", "orthdireft", "consreft", "lobireft"])
def test_rotation_stays_orthonormal_under_adamw_weight_decay(name, fused):
    """pyreft: one AdamW step with wd collapses R to exactly 0. Here even wd on R is harmless.

    Fused AdamW updates parameters without bumping their version counter; the optimizer hook
    must still retract."""
    module = make(name).train()
    before = module.rotation.weight.detach().clone()
    _adamw_steps(module, 1000, weight_decay=0.1, all_in_decay=True, fused=fused)
    assert (module.rotation.weight @ module.rotation.weight.T - torch.eye(R)).abs().max() <= 1e-5
    assert module.rotation.orthonormality_error() <= 1e-5
    assert (module.rotation.weight - before).abs().max() > 0.05, "R actually moved"


def test_rotation_stays_orthonormal_after_save_load_and_more_training(tmp_path):
    from safetensors.torch import load_file, save_file

    module = make("loreft").train()
    _adamw_steps(module, 100, weight_decay=0.05, all_in_decay=False)
    save_file(module.state_dict(), tmp_path / "w.safetensors")
    loaded = make("loreft", seed=1).train()
    loaded.load_state_dict(load_file(tmp_path / "w.safetensors"))
    h = torch.randn(8, D)
    torch.testing.assert_close(loaded.eval()(h), module.eval()(h))
    assert loaded.rotation.orthonormality_error() <= 1e-5
    _adamw_steps(loaded.train(), 300, weight_decay=0.05, all_in_decay=True, fused=True)
    assert loaded.rotation.orthonormality_error() <= 1e-5


def test_rotation_gradient_is_tangent():
    module = make("loreft").train()
    loss = module(torch.randn(16, D)).pow(2).sum()
    loss.backward()
    rot, grad = module.rotation.weight.detach(), module.rotation.weight.grad
    skew = grad @ rot.T
    torch.testing.assert_close(skew + skew.T, torch.zeros(R, R), atol=1e-4, rtol=0)


def test_weight_decay_reaches_w_and_b_but_not_r():
    module = make("loreft")
    wrapper = torch.nn.ModuleDict({"interventions": torch.nn.ModuleDict({"x": module})})
    groups = parameter_groups(wrapper, 0.1)
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    assert id(module.learned_source.weight) in decayed and id(module.learned_source.bias) in decayed
    assert id(module.rotation.weight) not in decayed
    # and it acts: with zero gradient, AdamW shrinks W by exactly (1 - lr * wd)
    optimizer = torch.optim.AdamW(groups, lr=0.5)
    w = module.learned_source.weight.detach().clone()
    for p in module.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    torch.testing.assert_close(module.learned_source.weight.detach(), w * (1 - 0.5 * 0.1))
    pyreft_like = parameter_groups(wrapper, 0.1, decay_interventions=False)
    assert all(g["weight_decay"] == 0 for g in pyreft_like)


@pytest.mark.parametrize("name", ["loreft", "orthdireft", "consreft", "lobireft"])
def test_r_trained_pyrefts_way_draws_the_same_r_and_saves_in_the_same_format(name):
    """``rotation_training="pyreft"``: torch's orthogonal parametrization over a d×r matrix, as pyreft
    0.1.0; the same random draws give the same starting R, the saved state is R (r×d) as in the
    default mode, and a saved method loads into either mode with the same outputs."""
    pyreft_way, default = make(name, rotation_training="pyreft"), make(name)
    assert torch.allclose(pyreft_way.rotation(), default.rotation.weight, atol=1e-6)
    state = pyreft_way.state_dict()
    assert sorted(k for k in state if k.startswith("rotation")) == ["rotation.weight"]
    assert state["rotation.weight"].shape == (R, D)
    names = {n for n, p in pyreft_way.named_parameters()}
    assert "rotation.layer.parametrizations.weight.original" in names and "rotation.weight" not in names
    assert pyreft_way.no_weight_decay() == {"rotation.layer.parametrizations.weight.original"}
    with torch.no_grad():  # move R off its start, as training would (gradients never reach the ±1 diagonal)
        pyreft_way.rotation.layer.parametrizations.weight.original.add_(0.1 * torch.randn(D, R).tril(-1))
    assert pyreft_way.rotation.orthonormality_error() < 1e-5
    h = torch.randn(5, D)
    for target in (make(name, seed=1, rotation_training="pyreft"), make(name, seed=1)):
        target.load_state_dict(pyreft_way.state_dict())
        assert torch.allclose(target(h), pyreft_way(h), atol=1e-5)
    with pytest.raises(ValueError, match="rotation_training must be"):
        make(name, rotation_training="cayley")
