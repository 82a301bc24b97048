"""Where the residual stream lives: model type → the list of transformer blocks.

An intervention at layer l edits the output of block l (pyreft's ``block_output``: the residual
stream right after layer l, 0-indexed). For encoders this is the post-LayerNorm output of the
layer, the same tensor as pyreft's ``roberta.encoder.layer[l].output``.

Paths are relative to the backbone (``model.base_model`` in Hugging Face terms: ``LlamaModel``,
``GPT2Model``, ``BertModel``...), so the same entry serves ``AutoModel``, ``...ForCausalLM`` and
``...ForSequenceClassification``; a peft-wrapped model is unwrapped first. A model type missing
here needs ``layer_module="path.to.blocks.{layer}"`` (relative to the model you pass in).
"""

from __future__ import annotations

import torch
from torch import nn

DECODER_LAYERS = "layers"
ARCHITECTURES: dict[str, str] = {
    # LLaMA family and its descendants: LlamaModel.layers
    **{t: DECODER_LAYERS for t in (
        "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma", "gemma2",
        "gemma3_text", "phi", "phi3", "olmo", "olmo2", "starcoder2", "cohere", "granite", "smollm3",
        "gpt_neox", "stablelm")},
    "gpt2": "h",
    "gpt_neo": "h",
    "gptj": "h",
    "bloom": "h",
    "falcon": "h",
    "opt": "decoder.layers",
    "bert": "encoder.layer",
    "roberta": "encoder.layer",
    "xlm-roberta": "encoder.layer",
    "electra": "encoder.layer",
    "mpnet": "encoder.layer",
    "deberta-v2": "encoder.layer",
    "distilbert": "transformer.layer",
}


def unwrap(model: nn.Module) -> nn.Module:
    """The Hugging Face model inside a peft wrapper (or the model itself)."""
    get_base_model = getattr(model, "get_base_model", None)
    return get_base_model() if callable(get_base_model) else model


def model_type(model: nn.Module) -> str:
    config = getattr(unwrap(model), "config", None)
    if config is None or not getattr(config, "model_type", None):
        raise ValueError(f"{type(model).__name__} has no Hugging Face config.model_type; "
                         "pass layer_module='path.to.blocks.{layer}' explicitly")
    return config.model_type


def hidden_size(model: nn.Module) -> int:
    config = unwrap(model).config
    for key in ("hidden_size", "n_embd", "d_model", "dim"):
        if getattr(config, key, None):
            return int(getattr(config, key))
    raise ValueError(f"cannot find the hidden size in the config of {type(model).__name__}")


def block_modules(model: nn.Module, layer_module: str | None = None) -> list[nn.Module]:
    """The transformer blocks whose outputs are the residual stream, in layer order.

    ``layer_module`` overrides the table: a path relative to ``model`` with a ``{layer}``
    placeholder (``"transformer.h.{layer}"``), or without one for a ModuleList (``"model.layers"``).
    """
    if layer_module:
        return _blocks_from_override(model, layer_module)
    kind = model_type(model)
    if kind not in ARCHITECTURES:
        raise ValueError(
            f"unsupported architecture {kind!r}: reft.architectures.ARCHITECTURES knows "
            f"{', '.join(sorted(ARCHITECTURES))}. Pass layer_module='path.to.blocks.{{layer}}' "
            "(relative to the model) to attach to it anyway.")
    backbone = unwrap(model).base_model
    path = ARCHITECTURES[kind]
    try:
        blocks = backbone.get_submodule(path)
    except AttributeError as err:
        raise ValueError(f"{kind!r} model {type(backbone).__name__} has no submodule {path!r}; "
                         "pass layer_module explicitly") from err
    return list(blocks)


def _blocks_from_override(model: nn.Module, layer_module: str) -> list[nn.Module]:
    path = layer_module.replace("[", ".").replace("]", "").replace("%s", "{layer}").replace("%d", "{layer}")
    if "{layer}" not in path:
        try:
            return list(model.get_submodule(path))
        except (AttributeError, TypeError) as err:
            raise ValueError(f"layer_module {layer_module!r} is not a ModuleList in "
                             f"{type(model).__name__}") from err
    blocks = []
    while True:
        try:
            blocks.append(model.get_submodule(path.format(layer=len(blocks))))
        except AttributeError:
            break
    if not blocks:
        raise ValueError(f"layer_module {layer_module!r} resolves to no module in {type(model).__name__} "
                         f"(tried {path.format(layer=0)!r})")
    return blocks


def model_dtype(model: nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def base_backbone(model: nn.Module) -> nn.Module:
    """The backbone module whose forward runs once per model call (used to spot the prefill)."""
    return unwrap(model).base_model
