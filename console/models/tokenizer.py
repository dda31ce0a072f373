"""Train the byte-level BPE tokenizer of the tiny models on the shipped corpus and save it HF-style.

Byte-level means every string round-trips (any UTF-8 byte is a token), so prompts of any text work.
Ids: ``<pad>`` 0, ``<s>`` 1, ``</s>`` 2, then ``<|system|>``, ``<|user|>``, ``<|assistant|>``, the 256 byte
tokens and the learned merges, 512 in all. Plain encoding adds ``<s>`` in front (as Llama tokenizers do); the
chat template writes ``<s>`` itself, and chat prompts are encoded without special tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from console.models.corpus import corpus_passages, corpus_sha256
from console.models.deps import require
from console.models.recipe import TokenizerRecipe

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast


def train_tokenizer(recipe: TokenizerRecipe, model_max_length: int) -> PreTrainedTokenizerFast:
    """Train the tokenizer described by ``recipe`` (deterministic: same corpus, same merges)."""
    if recipe.corpus_sha256 != corpus_sha256():
        raise ValueError(
            f"tokenizer recipe names corpus {recipe.corpus_sha256[:12]} but the shipped corpus is "
            f"{corpus_sha256()[:12]}: build from default_recipes()"
        )
    tokenizers = require("tokenizers")
    transformers = require("transformers")
    from tokenizers import decoders, models, pre_tokenizers, processors, trainers

    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=recipe.vocab_size,
        min_frequency=recipe.min_frequency,
        special_tokens=recipe.special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_lines(), trainer=trainer)
    if tok.get_vocab_size() != recipe.vocab_size:
        raise RuntimeError(
            f"tokenizer has {tok.get_vocab_size()} tokens, recipe asks for {recipe.vocab_size}"
        )
    bos_id = tok.token_to_id(recipe.bos_token)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{recipe.bos_token} $A",
        pair=f"{recipe.bos_token} $A {recipe.bos_token} $B",
        special_tokens=[(recipe.bos_token, bos_id)],
    )
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=recipe.bos_token,
        eos_token=recipe.eos_token,
        pad_token=recipe.pad_token,
        model_max_length=model_max_length,
    )
    fast.chat_template = recipe.chat_template
    return fast


def save_tokenizer(tokenizer: PreTrainedTokenizerFast, model_dir: Path) -> list[Path]:
    """Write ``tokenizer.json``, ``tokenizer_config.json`` and the chat template into ``model_dir``."""
    written = tokenizer.save_pretrained(str(model_dir))
    return [Path(p) for p in written]


def token_ids(recipe: TokenizerRecipe) -> dict[str, int]:
    """Ids of pad/bos/eos, fixed by their order in ``recipe.special_tokens``."""
    order = recipe.special_tokens
    return {
        "pad_token_id": order.index(recipe.pad_token),
        "bos_token_id": order.index(recipe.bos_token),
        "eos_token_id": order.index(recipe.eos_token),
    }


def _training_lines() -> list[str]:
    lines: list[str] = []
    for passage in corpus_passages():
        lines.append(f"{passage.category}: {passage.title}\n")
        lines.extend(line + "\n" for line in passage.text.splitlines())
    return lines
