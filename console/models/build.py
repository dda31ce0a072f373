"""Build the named tiny models into a models directory: cached by recipe hash, written atomically.

Each model is built in a hidden temp dir next to its final place and renamed into place only when every file
(``specdeck-recipe.json`` last) is written, so a crash never leaves a half model that looks complete. A lock
file serialises concurrent builders of the same directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from console.models import llama
from console.models.deps import require
from console.models.recipe import (
    RECIPE_FILE,
    RECIPE_VERSION,
    DrafterRecipe,
    ModelRecipe,
    TargetRecipe,
    WideRecipe,
    default_recipes,
    recipe_dict,
    recipe_hash,
    target_of,
)
from console.models.tokenizer import save_tokenizer, token_ids, train_tokenizer
from console.models.train import TrainReport, train_weights
from console.models.widen import widen_weights

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerFast

Progress = Callable[[str], None]
LOCK_FILE = ".build.lock"

MODEL_CARD = """\
# {name}

A **toy** model built by specdeck (`specdeck models build`) for demos and tests on a CPU. {what}
Its weights are random, or random and then briefly trained on toy items: its text is gibberish elsewhere and its
benchmark scores mean nothing about language models. Only the serving machinery around it (vLLM, speculative
decoding, metrics, the eval plumbing) is real.

Recipe hash: `{hash}` (full recipe in `specdeck-recipe.json`).
"""


def default_models_dir() -> Path:
    """Where the demo models live: ``$SPECDECK_MODELS_DIR``, else ``~/.cache/specdeck/models``."""
    env = os.environ.get("SPECDECK_MODELS_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "specdeck" / "models"


@dataclass(frozen=True)
class ModelStatus:
    """One named model in a models directory: built and current, stale (recipe changed), or missing."""

    name: str
    path: Path
    state: Literal["built", "stale", "missing"]
    recipe_hash: str
    built_hash: str | None
    size_bytes: int


def model_status(models_dir: Path, name: str, recipe: ModelRecipe) -> ModelStatus:
    """Status of ``name`` in ``models_dir`` against ``recipe``."""
    path = models_dir / name
    want = recipe_hash(recipe)
    built = _built_hash(path)
    if built is None:
        state: Literal["built", "stale", "missing"] = "missing"
    else:
        state = "built" if built == want else "stale"
    size = sum(f.stat().st_size for f in path.iterdir() if f.is_file()) if path.is_dir() else 0
    return ModelStatus(name, path, state, want, built, size)


def list_models(
    models_dir: Path | None = None, recipes: Mapping[str, ModelRecipe] | None = None
) -> list[ModelStatus]:
    """Status of every named model (default: the demo set) without building anything."""
    models_dir = models_dir or default_models_dir()
    recipes = recipes if recipes is not None else default_recipes()
    return [model_status(models_dir, name, r) for name, r in recipes.items()]


def build_models(
    models_dir: Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
    *,
    recipes: Mapping[str, ModelRecipe] | None = None,
    reuse_from: Sequence[Path] = (),
) -> dict[str, Path]:
    """Build (or reuse) the named models; returns name → model directory.

    A model is rebuilt only when missing or when its recipe hash changed; ``force`` rebuilds all of them.
    ``recipes`` replaces the demo set (targets must come before the drafters derived from them).
    ``reuse_from``: other models directories whose already-built targets (same recipe hash) a drafter may be
    derived from, instead of training the target again (benchmarks/drafter_noise.py uses the default one).
    """
    models_dir = (models_dir or default_models_dir()).expanduser()
    recipes = recipes if recipes is not None else default_recipes()
    say = progress or (lambda _msg: None)
    models_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    with _locked(models_dir):
        _remove_leftovers(models_dir)
        builder = _Builder(models_dir, say, reuse_from)
        for name, recipe in recipes.items():
            status = model_status(models_dir, name, recipe)
            paths[name] = status.path
            if status.state == "built" and not force:
                say(f"{name}: up to date ({status.recipe_hash[:12]})")
                continue
            why = "forced" if force and status.state == "built" else status.state
            say(f"{name}: building ({why}) …")
            t0 = time.perf_counter()
            builder.build(name, recipe, status.path)
            say(f"{name}: built in {time.perf_counter() - t0:.1f} s → {status.path}")
    return paths


class _Builder:
    """Shares the trained tokenizer and the target weights between the models of one build."""

    def __init__(self, models_dir: Path, say: Progress, reuse_from: Sequence[Path] = ()) -> None:
        self.models_dir = models_dir
        self.reuse_from = [p.expanduser() for p in reuse_from]
        self.say = say
        self._tokenizers: dict[str, PreTrainedTokenizerFast] = {}
        self._targets: dict[str, dict[str, torch.Tensor]] = {}
        self._training: dict[str, dict[str, Any]] = {}  # target hash → its "training" record

    def build(self, name: str, recipe: ModelRecipe, dest: Path) -> None:
        target = target_of(recipe)
        weights = self._target_weights(target)
        if isinstance(recipe, DrafterRecipe):
            weights = llama.add_noise(weights, recipe.noise_scale, recipe.noise_seed)
        elif isinstance(recipe, WideRecipe):
            weights = widen_weights(weights, target.arch, recipe.arch)
        tokenizer = self._tokenizer(target)
        digest = recipe_hash(recipe)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=self.models_dir))
        try:
            tmp.chmod(0o755)
            ids = token_ids(target.tokenizer)
            llama.write_json(tmp / "config.json", llama.config_dict(recipe.arch, ids))
            llama.write_json(tmp / "generation_config.json", llama.generation_config_dict(ids))
            llama.save_weights(weights, tmp)
            save_tokenizer(tokenizer, tmp)
            (tmp / "README.md").write_text(_card(name, recipe, digest), encoding="utf-8")
            for f in tmp.iterdir():
                f.chmod(0o644)
            files = {f.name: _sha256(f) for f in sorted(tmp.iterdir()) if f.is_file()}
            record = _recipe_record(name, recipe, digest, files)
            if isinstance(recipe, TargetRecipe) and digest in self._training:
                record["training"] = self._training[digest]
            llama.write_json(tmp / RECIPE_FILE, record)
            _fsync_dir(tmp)
            _replace_dir(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if isinstance(recipe, TargetRecipe):
            self._targets[digest] = weights

    def _tokenizer(self, target: TargetRecipe) -> PreTrainedTokenizerFast:
        key = json.dumps(recipe_dict(target)["tokenizer"], sort_keys=True)
        if key not in self._tokenizers:
            t0 = time.perf_counter()
            tok = train_tokenizer(target.tokenizer, target.arch.max_position_embeddings)
            self.say(f"tokenizer: trained {len(tok)} tokens in {time.perf_counter() - t0:.1f} s")
            self._tokenizers[key] = tok
        return self._tokenizers[key]

    def _target_weights(self, target: TargetRecipe) -> dict[str, torch.Tensor]:
        digest = recipe_hash(target)
        if digest not in self._targets:
            built = self._find_built(digest)
            if built:
                self._targets[digest] = llama.load_weights(built)
                training = json.loads((built / RECIPE_FILE).read_text(encoding="utf-8")).get("training")
                if training:
                    self._training[digest] = training
            else:
                weights = llama.init_weights(target.arch, target.seed)
                if target.train_steps:
                    self.say(f"training the target: {target.train_steps} steps on the toy MCQ items …")
                    weights, report = train_weights(weights, target, self._tokenizer(target), self.say)
                    self.say(f"trained in {report.seconds:.0f} s (final loss {report.final_loss:.3f})")
                    self._training[digest] = _training_record(report)
                self._targets[digest] = weights
        return self._targets[digest]

    def _find_built(self, digest: str) -> Path | None:
        """A model dir in this models dir (or a ``reuse_from`` one) already built from exactly this target
        recipe."""
        for models_dir in (self.models_dir, *self.reuse_from):
            if not models_dir.is_dir():
                continue
            for path in sorted(models_dir.iterdir()):
                if not path.name.startswith(".") and _built_hash(path) == digest:
                    return path
        return None


def _recipe_record(name: str, recipe: ModelRecipe, digest: str, files: dict[str, str]) -> dict[str, Any]:
    versions = {m: getattr(require(m), "__version__", "?") for m in ("torch", "transformers", "tokenizers")}
    return {
        "name": name,
        "recipe_hash": digest,
        "recipe_version": RECIPE_VERSION,
        "recipe": recipe_dict(recipe),
        "files_sha256": files,
        "built_with": versions,
    }


def _training_record(report: TrainReport) -> dict[str, Any]:
    """The deterministic part of a training run (time is printed, not stored: the files must not vary)."""
    return {"steps": report.steps, "losses": [list(p) for p in report.losses]}


def _card(name: str, recipe: ModelRecipe, digest: str) -> str:
    trained = target_of(recipe).train_steps
    if isinstance(recipe, TargetRecipe) and trained:
        what = (f"The target: a 2-layer Llama with seeded Gaussian weights, then trained for {trained} steps on "
                "generated toy multiple-choice items (\"Which is largest? (A)3 (B)9 (C)1 (D)4\" → \"(C) is "
                "smallest. Answer: (B)\"), so it answers those above chance and writes gibberish elsewhere.")
    elif isinstance(recipe, TargetRecipe):
        what = "The target: a 2-layer Llama with seeded Gaussian weights."
    elif isinstance(recipe, WideRecipe):
        a = recipe.arch
        what = (f"The demo's big target: tiny-target widened to hidden {a.hidden_size}, {a.num_attention_heads} "
                f"heads, intermediate {a.intermediate_size}, {a.num_hidden_layers} layers with zero padding "
                "(extra heads, rows and layers contribute exactly zero), so it computes tiny-target's function "
                "at a big model's cost; the tiny models are its drafters.")
    elif recipe.noise_scale == 0.0:
        what = "A drafter that is an exact copy of tiny-target (every draft token is accepted)."
    else:
        what = f"A drafter: tiny-target's weights plus Gaussian noise of {recipe.noise_scale} × each tensor's std."
    return MODEL_CARD.format(name=name, what=what, hash=digest)


def _built_hash(path: Path) -> str | None:
    """The recipe hash a complete model dir was built from; None if there is no complete model."""
    try:
        record = json.loads((path / RECIPE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (path / llama.WEIGHTS_FILE).is_file():
        return None
    digest = record.get("recipe_hash") if isinstance(record, dict) else None
    return digest if isinstance(digest, str) else None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _replace_dir(tmp: Path, dest: Path) -> None:
    """Move the finished ``tmp`` to ``dest``; an old ``dest`` is renamed away first, then deleted."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
        dest.rename(old)
    tmp.rename(dest)
    _fsync_dir(dest.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    for f in path.iterdir():
        if f.is_file():
            with f.open("rb") as handle:
                os.fsync(handle.fileno())
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_leftovers(models_dir: Path) -> None:
    """Delete temp/old dirs a crashed build left behind (only ever hidden ``.<name>.tmp-*`` / ``.old-*``)."""
    for path in models_dir.iterdir():
        if path.is_dir() and path.name.startswith(".") and (".tmp-" in path.name or ".old-" in path.name):
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _locked(models_dir: Path) -> Iterator[None]:
    with open(models_dir / LOCK_FILE, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
