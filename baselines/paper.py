"""The paper's method configurations and model shapes, as data (Tables 1 and 4; PAPER.md §3).

``TABLE1_METHODS`` are the Table 1 rows as method specs for LLaMA-family models; the baseline
rows are the settings of the papers they were copied from (LLM-Adapters, DoRA), reconstructed so
that each gives the printed Params% (the test ``test_paper_params_pct`` pins them):

* LoRA / DoRA: r = 32, α = 64, dropout 0.05 on q, k, v, up, down; DoRA(half): r = 16, α = 32;
* AdapterS / AdapterP: bottleneck 256, see ``baselines.bottleneck`` for the targets;
* PrefT: 10 virtual tokens, no reparametrisation (peft's default ``prefix_projection=False``);
* LoReFT: rank 8, tied f7+l7 on all layers; DiReFT: rank 4, untied f7+l7 on all layers
  (the README's tuning command; 64 interventions on LLaMA-7B give the same 0.031%).

``llama_config`` / ``roberta_config`` are the published architectures, for building weightless
(meta-device) models: nothing is downloaded.
"""

from __future__ import annotations

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "up_proj", "down_proj"]

TABLE1_METHODS: dict[str, dict] = {
    "LoReFT": {"name": "loreft", "rank": 8, "layers": "all", "positions": "f7+l7", "tied": True},
    "DiReFT": {"name": "direft", "rank": 4, "layers": "all", "positions": "f7+l7", "tied": False},
    "LoRA": {"name": "lora", "r": 32, "lora_alpha": 64, "lora_dropout": 0.05, "target_modules": LORA_TARGETS},
    "DoRA": {"name": "dora", "r": 32, "lora_alpha": 64, "lora_dropout": 0.05, "target_modules": LORA_TARGETS},
    "DoRA(half)": {"name": "dora", "r": 16, "lora_alpha": 32, "lora_dropout": 0.05,
                   "target_modules": LORA_TARGETS},
    "AdapterS": {"name": "adapter_series", "bottleneck_size": 256},
    "AdapterP": {"name": "adapter_parallel", "bottleneck_size": 256},
    "PrefT": {"name": "prefix_tuning", "num_virtual_tokens": 10},
}

# Table 4 (GLUE): LoReFT rank 1 on every layer at the first tokens, one intervention per layer.
TABLE4_LOREFT = {"name": "loreft", "rank": 1, "layers": "all", "positions": "f3"}

# Params% as printed in the paper: Table 1 (LLaMA-7B, LLaMA-13B) and Table 4 (RoBERTa).
TABLE1_PARAMS_PCT = {
    "LLaMA-7B": {"LoReFT": 0.031, "DiReFT": 0.031, "LoRA": 0.826, "DoRA": 0.838, "DoRA(half)": 0.427,
                 "AdapterS": 1.953, "AdapterP": 3.542, "PrefT": 0.039},
    "LLaMA-13B": {"LoReFT": 0.025, "DiReFT": 0.025, "LoRA": 0.670, "DoRA": 0.681, "DoRA(half)": 0.347,
                  "AdapterS": 1.586, "AdapterP": 2.894, "PrefT": 0.031},
}
TABLE4_PARAMS_PCT = {"RoBERTa-base": 0.015, "RoBERTa-large": 0.014}

_LLAMA_SHAPES = {  # hidden, MLP, layers, heads (Touvron et al. 2023, Table 2)
    "LLaMA-7B": (4096, 11008, 32, 32),
    "LLaMA-13B": (5120, 13824, 40, 40),
}
_ROBERTA_SHAPES = {"RoBERTa-base": (768, 3072, 12, 12), "RoBERTa-large": (1024, 4096, 24, 16)}


def llama_config(name: str):
    from transformers import LlamaConfig

    hidden, mlp, layers, heads = _LLAMA_SHAPES[name]
    return LlamaConfig(hidden_size=hidden, intermediate_size=mlp, num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=heads, vocab_size=32000,
                       tie_word_embeddings=False)


def roberta_config(name: str, num_labels: int = 2):
    from transformers import RobertaConfig

    hidden, mlp, layers, heads = _ROBERTA_SHAPES[name]
    return RobertaConfig(hidden_size=hidden, intermediate_size=mlp, num_hidden_layers=layers,
                         num_attention_heads=heads, vocab_size=50265, max_position_embeddings=514,
                         type_vocab_size=1, num_labels=num_labels)
