"""The events the bench phases emit. They are defined, with every other event, in `console/events.py` (the
one registry); this module names the bench's share of them for the bench modules' imports."""

from __future__ import annotations

from console.events import (
    AcceptanceMeasured,
    DeterminismMeasured,
    EngineStatsLive,
    LatencyMeasured,
    NiahMeasured,
    PhaseFailed,
    PhaseProgress,
    SpecDecodeLive,
    SpeedMeasured,
)

__all__ = ["AcceptanceMeasured", "DeterminismMeasured", "EngineStatsLive", "LatencyMeasured", "NiahMeasured",
           "PhaseFailed", "PhaseProgress", "SpecDecodeLive", "SpeedMeasured"]
