"""The experiment schema's shared ground: the base model every table derives from, the limits and id rules,
and the vLLM flags specdeck sets itself (`console/experiment/schema.py` re-exports all of it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
"""Ids become parts of cell ids and folder names: lower case, digits, '-' and '_'."""
ID_MAX = 64
"""Longest id: a cell id joins five of them and names a folder (255 bytes at most on ext4, APFS, NTFS)."""

# Upper bounds: far above anything real, low enough that a typo (an extra 0, 1e6, 2**63-1) is caught here
# instead of as an allocation failure ten minutes into a server start.
MAX_TOKENS = 16_777_216
"""Context lengths, prompt and output tokens: 16M, 16x the longest context of any model served today."""
MAX_CONCURRENCY = 65_536
MAX_K = 1024
"""num_speculative_tokens / diffusion canvas length."""
MAX_ITEMS = 10_000_000
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""Portable environment variable names (POSIX): no '=', no NUL, no spaces."""

OWNED_FLAGS = {
    "--host": "specdeck serves on 127.0.0.1 at a free port; for a server you started yourself use "
    "[models.attach] base_url",
    "--port": "specdeck picks a free port per server; for a server you started yourself use [models.attach] base_url",
    "--api-key": "specdeck guards each server with a per-run key of its own (a key here would be written to "
    "events.jsonl and runner.log in clear); for a server you started yourself use [models.attach] api_key",
    "--model": "set the model's `path`",
    "--served-model-name": "set the model's `served_name`",
    "--speculative-config": "set the technique's `method`, `k` and `config`",
    "--diffusion-config": "set the technique's `method`, `k` and `config`",
}
"""vLLM flags specdeck sets itself, with where the setting belongs instead."""


def owned_flag(word: str) -> str | None:
    """The owned flag `word` spells, if any: `--api-key`, `--api_key=X`, `--speculative-config.method`, or
    an abbreviation argparse would expand (`--hos`)."""
    if not word.startswith("--") or len(word) < 4:
        return None
    name = word.split("=", 1)[0].split(".", 1)[0].replace("_", "-")
    for flag in OWNED_FLAGS:
        if flag.startswith(name):
            return flag
    return None


class Strict(BaseModel):
    """Base: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
    """strict: "9216", true and "off" are not numbers or booleans; allow_inf_nan: inf and nan are typos."""
