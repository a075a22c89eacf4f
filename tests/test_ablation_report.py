"""benchmarks/harness/ablation_report.py on a hand-made record: table cells, missing rows, results.json, passes.png."""

import json

import pytest

from conftest import ROOT

pytest.importorskip("matplotlib")
from benchmarks.harness.ablation_report import write  # noqa: E402

CORPORA = ["ding-de-en", "lohelp-de-en"]
PASSES = (1, 2, 3, 5, 10)
MISSING = ("scratch", "lohelp-de-en", 5)  # (variant, corpus, passes) left out of the rows


def row(corpus: str, config: str, passes, bleu: float) -> dict:
    return {"corpus": corpus, "config": config, "system": config, "passes": passes,
            "mean_passes": None if passes is None else min(passes, 3.25), "sentences": 40, "bleu": bleu,
            "chrf": bleu + 20, "bleu_signature": "nrefs:1|tok:13a", "chrf_signature": "nrefs:1|nc:6",
            "length_ratio": 0.951, "repeated_words": 0.25, "reference_repeated_words": 0.05}


def make_record() -> dict:
    """ding: base at 5 passes 9 BLEU vs the AR twin's 12 (75%); lohelp: base 8 vs 10 (80%)."""
    rows = []
    for corpus, twin, base in (("ding-de-en", 12.0, 9.0), ("lohelp-de-en", 10.0, 8.0)):
        rows += [row(corpus, "teacher_beam4", None, twin - 1), row(corpus, "ar_twin_beam4", None, twin),
                 row(corpus, "ar_twin_greedy", None, twin - 0.5)]
        for name, bleu in (("base", base), ("scratch", base / 3)):
            rows += [row(corpus, f"{name}_p{p}", p, bleu - 5 + p) for p in PASSES if (name, corpus, p) != MISSING]
    variants = {"base": {"description": "warm start", "data": "distill", "warm": True, "flags": [], "updates": 1200},
                "scratch": {"description": "no warm start", "data": "raw", "warm": False, "flags": [], "updates": 900}}
    return {"date": "2025-01-01 00:00 UTC", "tiny": False, "arch": "gmlm_t5_mini", "minutes": 10.0,
            "ar_minutes": 20.0, "dropout": 0.1, "parallel": 2, "threads": 1, "train_pairs": 5000,
            "corpora": CORPORA, "variants": variants,
            "updates": {"base": 1200, "scratch": 900, "teacher": 2400, "ar_twin": 3500}, "rows": rows,
            "command": "python scripts/ablate.py --work work/ablate", "checkpoint": str(ROOT / "work" / "base.pt")}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("ablations") / "new"  # write() creates it
    record = make_record()
    write(record, out)
    return out, record


def table_line(markdown: str, first_cell: str) -> list:
    line = next(line for line in markdown.splitlines() if line.startswith(f"| {first_cell} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_main_table_shares_of_the_twin_and_missing_rows(report):
    markdown = (report[0] / "RESULTS.md").read_text()
    base = table_line(markdown, "base")
    # variant, description, data, warm, updates, then per corpus: BLEU, chrF, % of twin, length ratio, repeats
    assert base == ["base", "warm start", "distill", "yes", "1,200", "9.00", "29.00", "75%", "0.95", "25%",
                    "8.00", "28.00", "80%", "0.95", "25%"]
    scratch = table_line(markdown, "scratch")
    assert scratch[3] == "no" and scratch[5:8] == ["3.00", "23.00", "25%"]
    assert scratch[10:] == ["–"] * 5  # no scratch_p5 row on lohelp
    twin = table_line(markdown, "ar_twin_beam4")
    assert twin[4] == "3,500" and twin[7] == "100%" and twin[12] == "100%"
    assert table_line(markdown, "teacher_beam4")[4] == "2,400"


def test_passes_table_and_order_of_sections(report):
    markdown = (report[0] / "RESULTS.md").read_text()
    assert markdown.startswith("# Ablations: what makes the GMLM translate\n")
    assert "Cells: BLEU on ding-de-en / lohelp-de-en." in markdown
    header = table_line(markdown, "variant")  # the first table with a "variant" column is the main one
    assert header[:5] == ["variant", "description", "data", "warm start", "updates"]
    passes_section = markdown[markdown.index("## BLEU against decoder passes"):]
    assert table_line(passes_section, "base") == ["base", "5.00 / 4.00", "6.00 / 5.00", "7.00 / 6.00",
                                                  "9.00 / 8.00", "14.00 / 13.00", "3.25 / 3.25"]
    assert table_line(passes_section, "scratch")[4] == "3.00 / –"
    assert "`nrefs:1|tok:13a`" in markdown and "`nrefs:1|nc:6`" in markdown
    assert markdown.index("## BLEU against decoder passes") < markdown.index("sacreBLEU: `")
    assert markdown.rstrip().endswith("![BLEU against passes](passes.png)")
    assert "30 min in total" in markdown and "python scripts/ablate.py --work work/ablate" in markdown


def test_results_json_round_trip_with_relative_paths(report):
    out, record = report
    saved = json.loads((out / "results.json").read_text())
    assert saved["checkpoint"] == "work/base.pt"
    assert saved["rows"] == record["rows"] and saved["variants"] == record["variants"]
    assert record["checkpoint"] == str(ROOT / "work" / "base.pt")  # the caller's record is left alone


def test_plot_is_a_png(report):
    assert (report[0] / "passes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pass_cost_divides_wall_time_by_sentences_and_passes_over_corpora():
    from benchmarks.harness.ablation_report import pass_cost

    rows = [{"corpus": "a", "config": "base_p5", "seconds": 2.0, "sentences": 100, "mean_passes": 4.0},
            {"corpus": "b", "config": "base_p5", "seconds": 1.0, "sentences": 50, "mean_passes": 2.0},
            {"corpus": "a", "config": "other_p5", "seconds": 9.0, "sentences": 1, "mean_passes": 1.0}]
    assert pass_cost(rows, "base_p5") == pytest.approx(1000 * 3.0 / 500)
    assert pass_cost(rows, "missing_p5") is None


def test_budget_line_names_the_update_limits_where_they_were_set():
    from benchmarks.harness.ablation_report import intro_lines

    timed = " ".join(intro_lines(make_record()))
    assert "budget: every variant 10 min;" in timed and "(30 min in total)" in timed and "updates" not in timed
    limited = " ".join(intro_lines(dict(make_record(), max_update=800, ar_max_update=1200, twin_max_update=2000)))
    assert "budget, whichever comes first: every variant 10 min or 800 updates;" in limited
    assert "teacher (t5_ar at the same shape) 20 min or 1,200 updates;" in limited
    assert "for 10 min more (30 min or 2,000 updates in total)" in limited
    # the variants limited, the teacher not: the twin has no update limit either (ablate.twin_max_update)
    variants_only = " ".join(intro_lines(dict(make_record(), max_update=800)))
    assert "every variant 10 min or 800 updates;" in variants_only and "(30 min in total)" in variants_only


def test_threads_line_names_the_models_that_trained_with_other_threads():
    from benchmarks.harness.ablation_report import intro_lines

    plain = " ".join(intro_lines(make_record()))  # a record written before command.txt named its threads
    assert "This invocation trained 2 job(s) at a time with 1 thread(s) each;" in plain
    resumed = dict(make_record(), trained_threads={"teacher": 2, "ar_twin": None, "base": 1, "scratch": 1})
    text = " ".join(intro_lines(resumed))
    assert ("This invocation trained 2 job(s) at a time with 1 thread(s) each (recorded in each model's "
            "command.txt; teacher 2 thread(s), in an earlier invocation);") in text
    assert "base 1" not in text and "ar_twin" not in text
