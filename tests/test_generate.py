"""Generation: prompt-only interventions through the KV cache; batched == one by one."""

from __future__ import annotations

import pytest
import torch

from reft import ReftConfig, get_reft_model

PROMPTS = ["The capital of France is", "Write a haiku about the sea.\n", "2 + 2 ="]


@pytest.fixture
def reft_smollm2(smollm2):
    torch.manual_seed(3)
    return get_reft_model(smollm2, ReftConfig("loreft", rank=4, layers=[8, 16], positions="f3+l3")).eval()


def greedy(model, tok, prompts, side="left", **kwargs):
    batch = tok(prompts, return_tensors="pt", padding=True, padding_side=side)
    out = model.generate(**batch, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id, **kwargs)
    return [tok.decode(row[batch["input_ids"].shape[1]:], skip_special_tokens=True) for row in out]


def test_batched_left_padding_equals_one_by_one(reft_smollm2, smollm2_tokenizer):
    batched = greedy(reft_smollm2, smollm2_tokenizer, PROMPTS)
    single = [greedy(reft_smollm2, smollm2_tokenizer, [p])[0] for p in PROMPTS]
    assert batched == single
    plain = [greedy(reft_smollm2.model, smollm2_tokenizer, [p])[0] for p in PROMPTS]
    assert plain != single, "the interventions must change what is generated for this test to mean anything"


def test_only_the_prompt_is_intervened(reft_smollm2, smollm2_tokenizer):
    """generate == an intervened prefill, then plain cached decoding (pyvene intervene_on_prompt)."""
    tok = smollm2_tokenizer
    ids = tok(PROMPTS[0], return_tensors="pt")["input_ids"]
    expected = []
    with torch.no_grad():
        out = reft_smollm2(input_ids=ids, use_cache=True)
        cache, token = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
        for _ in range(8):
            expected.append(token.item())
            out = reft_smollm2.model(input_ids=token, past_key_values=cache, use_cache=True)
            cache, token = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
        generated = reft_smollm2.generate(ids, max_new_tokens=8, do_sample=False)[0, ids.shape[1]:].tolist()
    assert generated == expected


def test_beam_search_positions_follow_the_expanded_batch(reft_smollm2, smollm2_tokenizer):
    tok = smollm2_tokenizer
    batch = tok(PROMPTS, return_tensors="pt", padding=True, padding_side="left")
    auto = reft_smollm2.generate(**batch, max_new_tokens=5, num_beams=2, do_sample=False)
    explicit = reft_smollm2.generate(**batch, max_new_tokens=5, num_beams=2, do_sample=False,
                                     intervention_locations=reft_smollm2.locations(batch["attention_mask"]))
    assert torch.equal(auto, explicit)


def test_generation_without_cache_is_refused(reft_smollm2, smollm2_tokenizer):
    ids = smollm2_tokenizer(PROMPTS[0], return_tensors="pt")["input_ids"]
    with pytest.raises(ValueError, match="use_cache=False"):
        reft_smollm2.generate(ids, max_new_tokens=2, use_cache=False)
    assert reft_smollm2._active is None
