"""Reports: terminal tables fit the width, PNGs are written, the Markdown report has every section."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from console.cli import main
from console.results.columns import read_csv, write_csv
from console.results.report import build, markdown_report, terminal_report, write_plots
from console.results.roofline import tomllib
from console.results.tables import text_table

FIX = Path(__file__).resolve().parents[1] / "fixtures"
STUDY = FIX / "study" / "study_tables.csv"
PNG = b"\x89PNG\r\n\x1a\n"
SECTIONS = ["## Summary", "## How these numbers were measured", "## Throughput", "## Speed-up vs AR",
            "## Acceptance", "## Accuracy", "## Accuracy Δ vs AR", "## Roofline (c=1)",
            "## Serving settings per cell"]


def demo_like_rows() -> pd.DataFrame:
    """What the demo run's consolidation will produce: tiny target, AR / draft_model ×2 / ngram, c=1 and c=16."""
    serving = {"max_model_len": 2048, "dtype": "bfloat16", "enable_prefix_caching": False}
    rows: list[dict[str, object]] = []
    speeds = {"ar": (330, 700), "draft_exact": (327, 732), "draft_noisy": (96, 250), "ngram": (302, 1134)}
    for variant, (c1, c16) in speeds.items():
        tech = "ar" if variant == "ar" else ("ngram" if variant == "ngram" else "draft_model")
        for c, tok in ((1, c1), (16, c16)):
            cell = f"tiny.bf16.{variant}.short.c{c}"
            common = {"run_id": "demo", "cell_id": cell, "model": "tiny", "precision": "bf16", "technique": tech,
                      "k": None if tech == "ar" else 4, "context": "short", "concurrency": c,
                      "total_params_b": 0.002, "active_params_b": 0.002, "device_name": "cpu",
                      "vllm_version": "0.32.0", "source": "specdeck",
                      "serving_args": dict(serving, speculative_config={"method": tech}) if tech != "ar"
                      else serving, "timestamp": "2026-11-23T12:00:00Z"}
            rows.append({**common, "measurement": "speed", "tok_s_median": tok, "tok_s_min": tok * 0.97,
                         "tok_s_max": tok * 1.02, "tok_s_source": "nonstreaming", "repeats": 3, "n": c * 4})
            if tech != "ar":
                pp: list[float] = {"draft_exact": [1.0, 1.0, 1.0, 1.0], "draft_noisy": [0.16, 0.15, 0.15, 0.15],
                      "ngram": [0.8, 0.7, 0.65, 0.6]}[variant]
                rows.append({**common, "measurement": "acceptance", "acceptance_length": 1 + sum(pp),
                             "per_position": pp, "draft_acceptance_rate": sum(pp) / 4})
        score = {"ar": 0.60, "draft_exact": 0.61, "draft_noisy": 0.58, "ngram": 0.60}[variant]
        rows.append({"run_id": "demo", "cell_id": f"tiny.bf16.{variant}.short.c1", "model": "tiny",
                     "precision": "bf16", "technique": "ar" if variant == "ar" else
                     ("ngram" if variant == "ngram" else "draft_model"), "context": "short", "concurrency": 1,
                     "measurement": "accuracy", "benchmark": "tiny_mcq", "framework": "builtin", "n": 100,
                     "score": score, "blanks": 0, "extraction_failures": 1, "truncations": 0, "source": "specdeck"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def study_data():  # type: ignore[no-untyped-def]
    rules = tomllib.loads((FIX / "study" / "guide.toml").read_text())["guide"]
    return build(read_csv(STUDY), guide_rules=rules)


def test_terminal_report_fits_the_width(study_data) -> None:  # type: ignore[no-untyped-def]
    for width in (80, 120):
        text = terminal_report(study_data, width=width)
        assert max(len(line) for line in text.splitlines() if not line.startswith("- ")) <= width
    text = terminal_report(study_data, width=160)
    for title in ("Throughput", "Speed-up vs AR", "Accuracy Δ vs AR", "Roofline (c=1)", "Workload guide"):
        assert f"\n{title}\n" in text
    assert "2.62×" in text and "within noise" in text


def test_text_table_names_hidden_columns() -> None:
    df = pd.DataFrame({"a" * 10: ["x" * 30], "b" * 10: ["y" * 30], "c" * 10: ["z" * 30]})
    out = text_table(df, width=25)
    assert "not shown" in out and "cccccccccc" in out.split("not shown")[1]
    assert max(len(line) for line in out.splitlines()) <= 25


def test_plots_are_written_and_non_empty(tmp_path: Path) -> None:
    data = build(demo_like_rows())
    pngs = write_plots(data, tmp_path)
    drawn = {name: path for name, path in pngs.items() if path is not None}
    assert set(drawn) == {"Throughput", "Speed-up vs AR", "Acceptance", "Accuracy Δ vs AR",
                          "Pareto: per-user × total tok/s", "Pareto: speed × accuracy"}
    assert pngs["k sweep: tok/s against k"] is None  # no technique sweeps k here
    for path in drawn.values():
        assert path.read_bytes()[:8] == PNG and path.stat().st_size > 1024


def test_markdown_report_for_the_study(tmp_path: Path, study_data) -> None:  # type: ignore[no-untyped-def]
    md, pngs = markdown_report(study_data, tmp_path / "study.md", title="Study tables", with_plots=False)
    text = md.read_text()
    assert pngs == []
    for section in [*SECTIONS, "## Workload guide", "## Determinism / NIAH", "## Accuracy Δ summary"]:
        assert f"\n{section}\n" in text, section
    assert "1.70×" in text and "-0.011" in text and "+0.005" in text
    assert '`{"enable_prefix_caching": false, "gpu_memory_utilization": 0.85, "max_model_len": 16384}`' in text
    assert "typed in from a published write-up" in text


def test_markdown_report_discloses_streaming_imports(tmp_path: Path) -> None:
    from console.results.imports import import_vllm_bench

    data = build(import_vllm_bench(sorted((FIX / "imports" / "vllm_bench").glob("*.json"))))
    text = markdown_report(data, tmp_path / "r.md", with_plots=False)[0].read_text()
    assert "streaming client import" in text and "## Speed-up by category" in text


def test_report_command_on_a_demo_run_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "runs" / "demo"
    write_csv(demo_like_rows(), run / "results_consolidated.csv")
    (run / "experiment.resolved.toml").write_text(
        '[[guide]]\nname = "Fastest"\nobjective = "max_speed"\n\n[bandwidth]\ncpu = 0.04\n')
    md = tmp_path / "out" / "report.md"
    rc = main(["report", str(run), "--markdown", str(md), "--csv", str(tmp_path / "out" / "master.csv"),
               "--width", "100"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Workload guide" in out and "tiny.bf16.ngram.short.c16" in out
    text = md.read_text()
    for section in SECTIONS:
        assert f"\n{section}\n" in text, section
    assert "cpu 0.04 TB/s" in text
    pngs = sorted((tmp_path / "out" / "report_plots").glob("*.png"))
    assert len(pngs) == 6  # 4 + both Pareto views (c=1 and c=16, accuracy rows); no k sweep
    for png in pngs:
        assert f"](report_plots/{png.name})" in text
    assert len(read_csv(tmp_path / "out" / "master.csv")) == len(demo_like_rows())


def test_report_command_plots_only_and_bandwidth_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["report", str(STUDY), "--plots", str(tmp_path / "p"), "--bandwidth", "H100 80GB HBM3=2.0",
               "--width", "200"])
    out = capsys.readouterr().out
    assert rc == 0 and "4 PNG(s)" in out  # no acceptance rows in the study tables; + per-user × total
    assert "2.00" in out


def test_report_command_explains_a_run_dir_without_results(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "run").mkdir()
    assert main(["report", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "not a run folder" in err and "master CSV" in err
    assert main(["report", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_sparse_rows_do_not_break_the_report() -> None:
    rows = pd.DataFrame([
        {"run_id": "r", "cell_id": "a", "model": "m", "measurement": "speed", "tok_s_median": 10.0},
        {"run_id": "r", "cell_id": "b", "model": "m", "technique": "ar", "measurement": "speed", "tok_s_median": 5.0},
        {"run_id": "r", "cell_id": "c", "measurement": "accuracy", "score": 0.5},
        {"run_id": "r", "cell_id": "d"},
    ])
    data = build(rows, guide_rules=[{"name": "fast", "objective": "max_speed"}])
    text = terminal_report(data, width=90)
    assert "Speed-up vs AR" in text and "2.00×" in text
    assert data.guide is not None and data.guide.iloc[0]["tok_s"] == 10.0


def test_guide_rules_of_every_shipped_experiment_apply() -> None:
    """One `[[guide]]` schema: what the experiment loader accepts, the report's guide applies."""
    import tomllib

    from console.results.guide import validate_rules

    root = Path(__file__).resolve().parents[2]
    for toml in sorted((root / "experiments").glob("*.toml")):
        rules = tomllib.loads(toml.read_text()).get("guide", [])
        assert validate_rules(rules) == rules, toml.name


def test_text_table_never_clips_benchmark_names() -> None:
    from console.results.tables import text_table

    df = pd.DataFrame({"cell": ["tiny.bf16.ar.short.c1"] * 2, "technique": ["draft_model"] * 2,
                       "benchmark": ["toy-mcq-inspect", "toy-mcq-ko"], "note": ["x" * 40] * 2})
    out = text_table(df, width=70)
    assert "toy-mcq-inspect" in out and "toy-mcq-ko" in out and "toy-mcq-…" not in out
