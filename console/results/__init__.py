"""Results layer (pandas): the master table, derived tables, reports and imports.

- ``columns``   the master schema (one row per cell × measurement), normalize, merge, CSV round trip
- ``derive``    speed-up and accuracy Δ vs the AR baseline (SE, within-noise verdict, paired McNemar)
- ``roofline``  c=1 ceiling from memory bandwidth by device name
- ``guide``     the workload guide from ``[[guide]]`` rules
- ``report`` / ``tables`` / ``plots``   terminal tables, Markdown report, PNG charts
- ``imports`` (+ ``import_inspect``, ``import_common``, ``naming``)   vllm bench serve / lm-eval / inspect
"""
