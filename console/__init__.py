"""specdeck's headless core: experiment specs, vLLM serving, measurement, evals, runs and results.

Nothing under ``console`` imports Textual except ``console.app`` (the TUI shell).
"""

__version__ = "0.1.0"
