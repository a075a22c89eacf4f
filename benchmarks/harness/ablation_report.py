"""Stage 6 of ablate.py: ablations/RESULTS.md, ablations/results.json and ablations/passes.png."""

import itertools
import json
import logging
from pathlib import Path

from benchmarks.harness.report import colour_per_label, fmt, legend_below, percent, save_report

logger = logging.getLogger("benchmark.ablation_report")
TARGET_PASSES = 5  # the main table's configuration: <variant>_p5
TWIN = "ar_twin"  # the twin of a variant without regularisation or schedule flags (and of records written before twins)
COLUMNS = ("BLEU", "chrF", "% of AR twin", "length ratio", "repeats")


def share(value) -> str:
    """A percentage with no decimals, or '–'."""
    return "–" if value is None else f"{value:.0f}%"


def index_rows(rows: list) -> dict:
    """{(corpus, config): row}."""
    return {(row["corpus"], row["config"]): row for row in rows}


def corpus_cells(index: dict, corpus: str, config: str, twin_model: str = TWIN) -> list:
    """BLEU, chrF, % of TWIN_MODEL's beam-4 BLEU, length ratio and repeats of one configuration on one corpus."""
    row = index.get((corpus, config))
    if row is None or row.get("bleu") is None:
        return ["–"] * len(COLUMNS)
    twin = index.get((corpus, f"{twin_model}_beam4")) or {}
    of_twin = 100 * row["bleu"] / twin["bleu"] if twin.get("bleu") else None
    return [fmt(row["bleu"], ".2f"), fmt(row.get("chrf"), ".2f"), share(of_twin),
            fmt(row.get("length_ratio"), ".2f"), share(percent(row.get("repeated_words")))]


def ar_rows(record: dict) -> dict:
    """{config: (model, label)} of the autoregressive rows: the teacher, and each AR twin at beam 4 and greedy."""
    rows = {"teacher_beam4": ("teacher", "teacher, beam 4")}
    for twin, flags in record.get("twins", {TWIN: []}).items():
        own = f" ({' '.join(flags)})" if flags else ""
        rows.update({f"{twin}_beam4": (twin, f"AR twin{own}, beam 4"), f"{twin}_greedy": (twin, f"AR twin{own}, greedy")})
    return rows


def table_row(cells: list) -> str:
    return "| " + " | ".join(map(str, cells)) + " |"


def decoding_text(record: dict) -> str:
    """The GMLM variants' further decoding flags, as the run recorded them (runs before 2026-12-07: none, the mode
    length)."""
    flags = record.get("gmlm_decoding")
    return f"; the variants decode with `{' '.join(flags)}`" if flags else ""


def intro_lines(record: dict) -> list:
    """The title, what was trained for how long on what, and the command."""
    minutes, ar_minutes = record["minutes"], record["ar_minutes"]
    # update limits, 0 (or absent, in records written before they were recorded): none
    variant_limit, teacher_limit, twin_limit = (record.get(key) or 0
                                                for key in ("max_update", "ar_max_update", "twin_max_update"))

    def budget(mins: float, limit: int) -> str:
        return f"{mins:g} min or {limit:,} updates" if limit else f"{mins:g} min"

    first = ", whichever comes first" if variant_limit or teacher_limit else ""
    text = (f"Date {record['date']}; arch `{record['arch']}`. Training budget{first}: every variant "
            f"{budget(minutes, variant_limit)}; the teacher (t5_ar at the same shape) "
            f"{budget(ar_minutes, teacher_limit)}; the AR twin is the teacher trained on for {minutes:g} min more "
            f"({budget(ar_minutes + minutes, twin_limit)} in total){twins_text(record)}. {threads_text(record)}; "
            f"{record['train_pairs']:,} training pairs (the union of "
            f"the corpora); dropout {record['dropout']}. Scored with sacreBLEU and chrF on the valid set of each "
            f"corpus: {', '.join(record['corpora'])}. P passes = `--iter-decode-max-iter P-1`"
            f"{decoding_text(record)}.")
    if record.get("tiny"):
        text += " **--tiny run: toy data and models, figures meaningless.**"
    return ["# Ablations: what makes the GMLM translate", "", text, "", "```", record["command"], "```", ""]


def twins_text(record: dict) -> str:
    """Which AR twins trained with other regularisation or schedule flags than the teacher's, where any did."""
    own = {twin: flags for twin, flags in record.get("twins", {}).items() if flags}
    if not own:
        return ""
    return ("; a variant that sets regularisation or schedule flags is compared with a twin trained on with the same ones (" +
            ", ".join(f"`{twin}`: `{' '.join(flags)}`" for twin, flags in own.items()) + ")")


def threads_text(record: dict) -> str:
    """How the models trained: this invocation's jobs and threads, and, where a model's command.txt says it trained
    with other threads (an earlier invocation, resumed from), which."""
    text = f"This invocation trained {record['parallel']} job(s) at a time with {record['threads']} thread(s) each"
    other = {name: threads for name, threads in record.get("trained_threads", {}).items()
             if threads is not None and threads != record["threads"]}
    if other:
        text += " (recorded in each model's command.txt; " + ", ".join(
            f"{name} {threads} thread(s)" for name, threads in other.items()) + ", in an earlier invocation)"
    return text


def main_table_lines(record: dict) -> list:
    """One row per variant at 5 passes, then the AR systems; per corpus the columns of COLUMNS."""
    corpora, index = record["corpora"], index_rows(record["rows"])
    lines = [f"## Variants at {TARGET_PASSES} decoder passes, against the AR systems", "",
             table_row(["variant", "description", "data", "warm start", "updates",
                        *(f"{corpus} {column}" for corpus in corpora for column in COLUMNS)]),
             "|" + "---|" * (5 + len(corpora) * len(COLUMNS))]
    for name, spec in record["variants"].items():
        cells = [cell for corpus in corpora
                 for cell in corpus_cells(index, corpus, f"{name}_p{TARGET_PASSES}", spec.get("twin", TWIN))]
        updates = spec.get("updates", record["updates"].get(name))
        lines.append(table_row([name, spec["description"], spec["data"], "yes" if spec["warm"] else "no",
                                fmt(updates, ","), *cells]))
    for config, (model, label) in ar_rows(record).items():
        twin = TWIN if model == "teacher" else model
        cells = [cell for corpus in corpora for cell in corpus_cells(index, corpus, config, twin)]
        warm = "no" if model == "teacher" else "continues the teacher"
        lines.append(table_row([config, label, "raw", warm, fmt(record["updates"].get(model), ","), *cells]))
    return lines + ["", main_table_legend(record, index), ""]


def main_table_legend(record: dict, index: dict) -> str:
    """What the columns of the main table mean, with the references' repeat rate per corpus."""
    references = []
    for corpus in record["corpora"]:
        row = next((row for (name, _), row in index.items() if name == corpus), {})
        references.append(share(percent(row.get("reference_repeated_words"))))
    return ("% of AR twin: BLEU as a share of the beam-4 BLEU on that corpus of the variant's AR twin (the teacher "
            "trained on with the variant's regularisation or schedule flags; the teacher's row: the twin without any). Length ratio: hypothesis / "
            "reference words (sacreBLEU's). Repeats: the share of outputs in which a word directly repeats "
            f"(the references: {' / '.join(references)}).")


def pass_counts(rows: list) -> list:
    """The sorted pass counts of the non-autoregressive rows."""
    return sorted({row["passes"] for row in rows if row.get("passes") is not None})


def per_corpus(index: dict, corpora: list, config: str, key: str, spec: str) -> str:
    """ROW[KEY] of CONFIG on every corpus, joined by ' / ' in corpus order ('–' where missing)."""
    return " / ".join(fmt((index.get((corpus, config)) or {}).get(key), spec) for corpus in corpora)


def passes_table_lines(record: dict) -> list:
    """BLEU per variant and pass count, each cell 'BLEU on corpus 1 / corpus 2 / ...'."""
    corpora, index, counts = record["corpora"], index_rows(record["rows"]), pass_counts(record["rows"])
    header = ["variant", *(f"{count} pass{'es' * (count != 1)}" for count in counts),
              f"mean passes used ({TARGET_PASSES}-pass row)"]
    lines = ["## BLEU against decoder passes", "", f"Cells: BLEU on {' / '.join(corpora)}.", "",
             table_row(header), "|" + "---|" * len(header)]
    for name in record["variants"]:
        cells = [per_corpus(index, corpora, f"{name}_p{count}", "bleu", ".2f") for count in counts]
        mean = per_corpus(index, corpora, f"{name}_p{TARGET_PASSES}", "mean_passes", ".2f")
        lines.append(table_row([name, *cells, mean]))
    return lines + [""]


def pass_cost(rows: list, config: str):
    """Milliseconds per sentence and decoder pass of CONFIG over all corpora (batches of 64, the whole
    evaluation's wall time, so it includes encoding and bookkeeping); None without timed rows."""
    timed = [row for row in rows if row["config"] == config and row.get("seconds") and row.get("mean_passes")]
    if not timed:
        return None
    return 1000 * sum(row["seconds"] for row in timed) / sum(row["sentences"] * row["mean_passes"] for row in timed)


def cost_lines(record: dict) -> list:
    """What each variant's decoder pass costs at TARGET_PASSES passes (the position inputs differ here)."""
    lines = ["## Cost of a decoder pass", "",
             f"Evaluation wall time per sentence and pass at {TARGET_PASSES} passes, batches of 64, over every corpus's "
             f"valid set, {record['parallel'] * record['threads']} threads, nothing else running.", "",
             table_row(["variant", "ms per sentence and pass"]), "|---|---|"]
    for name in record["variants"]:
        lines.append(table_row([name, fmt(pass_cost(record["rows"], f"{name}_p{TARGET_PASSES}"), ".3f")]))
    return lines + [""]


def signature_lines(rows: list) -> list:
    """The sacreBLEU and chrF signatures of the first row."""
    if not rows:
        return ["No scores.", ""]
    return [f"sacreBLEU: `{rows[0].get('bleu_signature')}`; chrF: `{rows[0].get('chrf_signature')}`.", ""]


def markdown(record: dict) -> str:
    """RESULTS.md."""
    lines = intro_lines(record) + main_table_lines(record) + passes_table_lines(record) + cost_lines(record)
    lines += signature_lines(record["rows"]) + ["![BLEU against passes](passes.png)", ""]
    return "\n".join(lines)


def plot(record: dict, path: Path) -> None:
    """passes.png: per corpus, BLEU against passes per variant; the AR rows as dashed horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corpora, rows = record["corpora"], record["rows"]
    figure, axes = plt.subplots(1, len(corpora), figsize=(6 * len(corpora), 4.5), squeeze=False)
    colours = colour_per_label(record["variants"])
    ar = ar_rows(record)
    ar_colours = dict(zip(ar, itertools.cycle(("darkgoldenrod", "black", "teal", "dimgray", "purple", "olive",
                                               "brown"))))
    legend = {}  # label -> line, for legend_below
    for axis, corpus in zip(axes[0], corpora):
        for name in record["variants"]:
            points = sorted((row["passes"], row["bleu"]) for row in rows if row["corpus"] == corpus
                            and row.get("passes") is not None and row["config"] == f"{name}_p{row['passes']}")
            if points:
                legend.setdefault(name, axis.plot(*zip(*points), marker="o", color=colours[name])[0])
        for config, (_, label) in ar.items():
            row = next((row for row in rows if row["corpus"] == corpus and row["config"] == config), None)
            if row is not None:
                legend.setdefault(label, axis.axhline(row["bleu"], linestyle="--", color=ar_colours[config],
                                                      linewidth=1))
        axis.set_xticks(pass_counts(rows) or [1])
        axis.set(xlabel="decoder passes", ylabel="sacreBLEU", title=f"valid set {corpus}")
        axis.grid(alpha=0.3)
    legend_below(figure, legend)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write(record: dict, out_dir: Path) -> None:
    """RESULTS.md, results.json (paths relative to the repository) and passes.png into OUT_DIR."""
    save_report(record, out_dir, markdown, plot, "passes.png")
    logger.info("wrote %s/{RESULTS.md,results.json,passes.png}", out_dir)
