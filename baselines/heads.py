"""What kind of Hugging Face model a method is attached to, and where its task head is.

GLUE models are ``...ForSequenceClassification``: a backbone (``model.base_model_prefix``, e.g.
``roberta``) plus a randomly initialised head (``classifier`` or ``score``). Every method trains
that head (the paper's ``--allow_cls_grad``; peft's ``modules_to_save``), and the paper's Params%
leaves it out (Table 13 caption).
"""

from __future__ import annotations

from torch import nn

from reft.architectures import unwrap


def hf_model(module: nn.Module) -> nn.Module:
    """The Hugging Face model under any wrapper (ReftModel, peft, or none)."""
    inner = getattr(module, "model", None)
    if inner is not None and hasattr(module, "interventions"):  # a ReftModel
        module = inner
    return unwrap(module)


def is_sequence_classifier(model: nn.Module) -> bool:
    return type(hf_model(model)).__name__.endswith("ForSequenceClassification")


def is_causal_lm(model: nn.Module) -> bool:
    name = type(hf_model(model)).__name__
    return name.endswith("ForCausalLM") or name.endswith("LMHeadModel")


def peft_task_type(model: nn.Module) -> str:
    """peft's ``task_type`` for the model (decides how prompts, heads and generate are handled)."""
    if is_sequence_classifier(model):
        return "SEQ_CLS"
    if is_causal_lm(model):
        return "CAUSAL_LM"
    return "FEATURE_EXTRACTION"


def head_names(model: nn.Module) -> set[str]:
    """Top-level children holding the classification head (empty for LMs and bare encoders)."""
    inner = hf_model(model)
    if not is_sequence_classifier(inner):
        return set()
    return {name for name, child in inner.named_children()
            if name != inner.base_model_prefix and any(True for _ in child.parameters())}


def is_head_parameter(name: str, heads: set[str]) -> bool:
    """Whether a (possibly wrapper-prefixed) parameter name lies inside a head module."""
    return bool(heads) and any(part in heads for part in name.split("."))


def unfreeze_head(model: nn.Module) -> None:
    inner = hf_model(model)
    for name in head_names(inner):
        for param in getattr(inner, name).parameters():
            param.requires_grad_(True)
