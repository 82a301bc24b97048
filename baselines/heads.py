"""What kind of Hugging Face model a method is attached to, and where its task head is.

GLUE models are ``...ForSequenceClassification``: a backbone (``model.base_model_prefix``, e.g.
``roberta``) plus a randomly initialised head (``classifier`` or ``score``). Every method trains
that head (the paper's ``--allow_cls_grad``; peft's ``modules_to_save``), and the paper's Params%
leaves it out (Table 13 caption).

RoBERTa's head (``classifier``) is dense → tanh → projection. BERT-style models (BERT, MiniLM)
split the same computation: the dense → tanh ``pooler`` lives inside the backbone and
``classifier`` is one projection. Full finetuning trains both; a frozen backbone would keep the
pooler at whatever its pretraining left (for sentence-transformer checkpoints such as
all-MiniLM-L6-v2, which pool by mean, an untrained layer). So the pooler counts as part of the
head here: trained by every method, saved with it, and left out of Params%.
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
    """Module paths (relative to the Hugging Face model) of the classification head: the top-level
    children outside the backbone, plus the backbone's ``pooler`` where the head reads it (BERT).
    Empty for LMs and bare encoders."""
    inner = hf_model(model)
    if not is_sequence_classifier(inner):
        return set()
    names = {name for name, child in inner.named_children()
             if name != inner.base_model_prefix and any(True for _ in child.parameters())}
    pooler = getattr(getattr(inner, inner.base_model_prefix, None), "pooler", None)
    if isinstance(pooler, nn.Module) and any(True for _ in pooler.parameters()):
        names.add(f"{inner.base_model_prefix}.pooler")
    return names


def is_head_parameter(name: str, heads: set[str]) -> bool:
    """Whether a (possibly wrapper-prefixed) parameter name lies inside a head module."""
    padded = f".{name}."
    return any(f".{head}." in padded for head in heads)


def unfreeze_head(model: nn.Module) -> None:
    inner = hf_model(model)
    for name in head_names(inner):
        for param in inner.get_submodule(name).parameters():
            param.requires_grad_(True)
