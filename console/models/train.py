"""Train the tiny target, briefly and deterministically, to answer the project's toy multiple-choice items.

The items come from ``console.evals.data`` ("Which is largest? (A)3 (B)9 (C)1 (D)4", and the same in
Korean) and the answers carry a reasoning preamble that names a wrong option before the final one —
"(C) is smallest. Answer: (B)" — so that a first-letter grader fails where a last-letter grader passes: the
study's thinking-on trap, on a real (toy) model. The digit tuples of the shipped eval sets are never trained on.

Each item is rendered with the tokenizer's chat template (what vLLM's /v1/chat/completions builds), and the
loss is on the assistant's tokens only. AdamW, linear warm-up then linear decay, gradient clipping at 1,
batches drawn from one seeded ``random.Random``, one language per batch (less padding), float32 on the CPU with
a fixed thread count: the same recipe gives the same weights on the same machine and torch build. (Float
reductions can differ across CPU instruction sets, so bytes may differ between machines; the recipe hash
does not.)
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from console.models import llama
from console.models.deps import require
from console.models.recipe import TargetRecipe

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerFast

Progress = Callable[[str], None]
IGNORE = -100


@dataclass(frozen=True)
class TrainReport:
    """What a training run did: losses every ``log_every`` steps (deterministic) and its cost (not)."""

    steps: int
    losses: tuple[tuple[int, float], ...]
    seconds: float
    cpu_seconds: float

    @property
    def final_loss(self) -> float:
        return self.losses[-1][1] if self.losses else float("nan")


def encode_pairs(tokenizer: PreTrainedTokenizerFast, pairs: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
    """(input ids, labels) per (prompt, response): the chat-templated conversation, labels on the assistant's
    part (its content and the closing ``</s>``) only."""
    out = []
    for prompt, response in pairs:
        user = [{"role": "user", "content": prompt}]
        head = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template([*user, {"role": "assistant", "content": response}], tokenize=False)
        a = tokenizer.encode(str(head), add_special_tokens=False)
        b = tokenizer.encode(str(full), add_special_tokens=False)
        if b[: len(a)] != a:
            raise RuntimeError("the chat template does not extend the generation prompt: cannot mask the prompt")
        out.append((b, [IGNORE] * len(a) + b[len(a):]))
    return out


class TrainingSet:
    """The (prompt, response) pairs of one language, encoded on first use (a short run encodes only what it
    draws)."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast, pairs: list[tuple[str, str]]) -> None:
        self.tokenizer = tokenizer
        self.pairs = pairs
        self._encoded: dict[int, tuple[list[int], list[int]]] = {}

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[list[int], list[int]]:
        if i not in self._encoded:
            self._encoded[i] = encode_pairs(self.tokenizer, [self.pairs[i]])[0]
        return self._encoded[i]


def training_sets(recipe: TargetRecipe, tokenizer: PreTrainedTokenizerFast) -> list[TrainingSet]:
    """One training set per language of the recipe (the held-out eval items are never in them)."""
    from console.evals.data import toy_training_pairs

    return [TrainingSet(tokenizer, toy_training_pairs((lang,))) for lang in recipe.train_langs]


def _batch(th: Any, rows: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in rows)
    ids = [x + [pad_id] * (width - len(x)) for x, _ in rows]
    labels = [y + [IGNORE] * (width - len(y)) for _, y in rows]
    mask = [[1] * len(x) + [0] * (width - len(x)) for x, _ in rows]
    return {"input_ids": th.tensor(ids), "labels": th.tensor(labels), "attention_mask": th.tensor(mask)}


def train_weights(weights: dict[str, torch.Tensor], recipe: TargetRecipe, tokenizer: PreTrainedTokenizerFast,
                  progress: Progress | None = None, log_every: int = 25) -> tuple[dict[str, torch.Tensor], TrainReport]:
    """``recipe.train_steps`` steps from ``weights``; returns the trained weights (in the input dtype)."""
    th = require("torch")
    transformers = require("transformers")
    say = progress or (lambda _msg: None)
    threads = th.get_num_threads()
    th.set_num_threads(recipe.train_threads)
    try:
        th.manual_seed(recipe.train_seed)
        ids = {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
        config = transformers.LlamaConfig(**{k: v for k, v in llama.config_dict(recipe.arch, ids).items()
                                             if k not in ("torch_dtype", "dtype", "architectures")})
        model = transformers.LlamaForCausalLM(config).to(th.float32)
        dtype = next(iter(weights.values())).dtype
        model.load_state_dict({k: v.to(th.float32) for k, v in weights.items()}, strict=True)
        model.train()
        sets = training_sets(recipe, tokenizer)
        opt = th.optim.AdamW(model.parameters(), lr=recipe.train_lr, weight_decay=0.0)
        steps, warmup = recipe.train_steps, max(1, recipe.train_steps // 20)

        def lr_at(step: int) -> float:
            return min(1.0, (step + 1) / warmup) * max(0.05, 1.0 - step / steps)

        sched = th.optim.lr_scheduler.LambdaLR(opt, lr_at)
        rng = random.Random(recipe.train_seed)
        losses: list[tuple[int, float]] = []
        t0, c0 = time.perf_counter(), time.process_time()
        for step in range(steps):
            rows = sets[step % len(sets)]
            batch = _batch(th, [rows[rng.randrange(len(rows))] for _ in range(recipe.train_batch)],
                           tokenizer.pad_token_id or 0)
            loss = model(**batch).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            th.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            if (step + 1) % log_every == 0 or step + 1 == steps:
                value = float(loss.detach())
                losses.append((step + 1, round(value, 4)))
                say(f"training: step {step + 1}/{steps}, loss {value:.3f}, "
                    f"{time.perf_counter() - t0:.0f} s")
        trained = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items() if k in weights}
        report = TrainReport(steps, tuple(losses), time.perf_counter() - t0, time.process_time() - c0)
        return trained, report
    finally:
        th.set_num_threads(threads)
