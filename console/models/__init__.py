"""Tiny local demo models (a target and its drafters), built offline and deterministically.

``build_models()`` trains a byte-level BPE tokenizer on the shipped corpus, draws a seeded random 2-layer
Llama (the target) and derives drafters from it: an exact copy and noisy copies whose acceptance decays with
draft position; and ``wide-target``, the trained target zero-padded to a 68 M-parameter shape that computes
the same function at a big model's cost (``console.models.widen``), so the tiny models can draft for it. Each model is a complete Hugging Face directory that vLLM serves; experiments refer to them as
``@models/<name>``. The models are toys (a tiny Llama trained on one quiz): only the machinery around them is real.

Nothing here imports torch or transformers until a build runs (see ``console.models.deps``).
"""

from console.models.build import ModelStatus, build_models, default_models_dir, list_models
from console.models.corpus import Passage, corpus_passages, corpus_path, corpus_text
from console.models.deps import ModelDependencyError
from console.models.recipe import (
    NOISE_LEVELS,
    TARGET_NAME,
    WIDE_NAME,
    DrafterRecipe,
    TargetRecipe,
    WideRecipe,
    default_recipes,
    recipe_hash,
)

MODEL_NAMES: tuple[str, ...] = (TARGET_NAME, *NOISE_LEVELS, WIDE_NAME)

__all__ = [
    "MODEL_NAMES",
    "NOISE_LEVELS",
    "TARGET_NAME",
    "DrafterRecipe",
    "ModelDependencyError",
    "ModelStatus",
    "Passage",
    "TargetRecipe",
    "WIDE_NAME",
    "WideRecipe",
    "build_models",
    "corpus_passages",
    "corpus_path",
    "corpus_text",
    "default_models_dir",
    "default_recipes",
    "list_models",
    "recipe_hash",
]
