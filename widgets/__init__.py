"""Textual widgets for specdeck: data in, messages out; no processes, no HTTP."""
