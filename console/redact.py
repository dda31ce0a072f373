"""What is never written down: values of environment variables whose names look secret.

Used wherever `[serving].env` is shown or stored (experiment.resolved.toml, the master CSV's `serving_args`),
so an `HF_TOKEN` given to a server reaches the server and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|CREDENTIAL|^HF_", re.IGNORECASE)
"""`*TOKEN*`, `*KEY*`, `*SECRET*`, `*PASSWORD*`, `*CREDENTIAL*`, `HF_*` (case-insensitive)."""
REDACTED = "***"


def looks_secret(name: str) -> bool:
    """`HF_TOKEN`, `OPENAI_API_KEY`, `AWS_SECRET_ACCESS_KEY`, any `HF_*`: a name whose value may be a secret."""
    return bool(SECRET_NAME.search(name))


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` as it may be shown or stored: values of secret-looking names replaced by `***`."""
    return {k: (REDACTED if looks_secret(k) and v else v) for k, v in env.items()}
