"""Stage 7: benchmarks/RESULTS.md, benchmarks/results.json and benchmarks/tradeoff.png."""

import json
import logging
import math
import os
import platform
from pathlib import Path

from benchmarks.harness.paths import relative
from benchmarks.harness.systems import TARGET_PASSES

logger = logging.getLogger("benchmark.report")
REFERENCE = "ar_beam4"  # speed-ups are relative to AR beam 4 at the same batch size
TARGET = f"gmlm_p{TARGET_PASSES}"  # the configuration the issue's targets name


def default_threads() -> int:
    """Torch threads for evaluation and timing unless told: $OMP_NUM_THREADS, else every core."""
    return int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))


def machine_info(device: str, precision: str, threads: int) -> dict:
    import torch

    from fairseq_gmlm.precision import cpu_has_native_bfloat16

    info = {"device": device, "precision": precision, "threads": threads, "torch": torch.__version__,
            "cpu": cpu_name(), "cpu_cores": os.cpu_count(), "native_bfloat16": cpu_has_native_bfloat16(),
            "platform": platform.platform()}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def merge(scores: list, speed_rows: list) -> dict:
    """{corpus: [row with scores, speed and speed-ups]} in the configurations' order."""
    speed = {(row["corpus"], row["config"]): row for row in speed_rows}
    tables = {}
    for row in scores:
        merged = dict(row, **speed.get((row["corpus"], row["config"]), {}))
        tables.setdefault(row["corpus"], []).append(merged)
    for rows in tables.values():
        reference = next((row for row in rows if row["config"] == REFERENCE and "latency_ms" in row), None)
        for row in rows:
            if reference and "latency_ms" in row:
                row["latency_speedup"] = reference["latency_ms"] / row["latency_ms"]
                row["throughput_speedup"] = row["throughput"] / reference["throughput"]
    return tables


def percent(share):
    return None if share is None else 100 * share


def fmt(value, spec: str = ".1f") -> str:
    return "–" if value is None else format(value, spec)


def bfloat16_text(machine: dict) -> str:
    """Whether the CPU multiplies bfloat16 natively, which decides --train-amp's default (not recorded before
    2026-12-07)."""
    if "native_bfloat16" not in machine:
        return ""
    return ", bfloat16 native" if machine["native_bfloat16"] else ", bfloat16 emulated"


def markdown(result: dict) -> str:
    machine = result["machine"]
    lines = [f"# Benchmark: {' + '.join(result['tables'])}", "",
             f"Date {result['date']}; machine: {machine['cpu']} ({machine['cpu_cores']} cores{bfloat16_text(machine)})"
             + (f", GPU {machine['gpu']}" if machine.get("gpu") else "")
             + f"; device {machine['device']}, {machine['precision']}, {machine['threads']} threads, torch {machine['torch']}."
             + (" **--tiny run: toy data and models, figures meaningless.**" if result["tiny"] else ""), "",
             "BLEU and chrF come from float32 decoding (batches of 64), detokenized, against the raw references. "
             "Passes: the most decoder passes allowed (P passes = `--iter-decode-max-iter P-1`) / the mean used "
             "(a sentence stops early when a pass changes nothing); AR decodes token by token with cached states.",
             ""]
    lines += target_lines(result)
    for corpus, rows in result["tables"].items():
        speed = next((row for row in rows if "latency_ms" in row), {})
        lines += [f"## Test set {corpus} ({rows[0]['sentences']} sentences)", "",
                  f"Latency: batch size 1 over the first {speed.get('latency_sentences', '?')} sentences; throughput: "
                  f"batches of {speed.get('large_batch', '?')} over all {speed.get('throughput_sentences', '?')}; "
                  f"median of {speed.get('repeats', '?')} rounds after a warm-up, each round timing every "
                  f"configuration on a tenth of the sentences before the next tenth (docs/benchmark.md, \"How speed is "
                  f"measured\"). Speed-up: vs AR beam 4 at the same batch size.", "",
                  "| system | passes (max / mean) | BLEU | chrF | latency ms/sent (bs 1) | speed-up (bs 1) "
                  "| throughput sent/s | speed-up (large batch) | length ratio | repeats |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for row in rows:
            passes = "AR" if row["passes"] is None else f"{row['passes']} / {fmt(row['mean_passes'], '.2f')}"
            lines.append(f"| {row['system']} | {passes} | {row['bleu']:.2f} | {row['chrf']:.2f} | "
                         f"{fmt(row.get('latency_ms'))} | {fmt(row.get('latency_speedup'), '.2f')}x | "
                         f"{fmt(row.get('throughput'))} | {fmt(row.get('throughput_speedup'), '.2f')}x | "
                         f"{fmt(row.get('length_ratio'), '.2f')} | {fmt(percent(row.get('repeated_words')), '.0f')}% |")
        lines += ["", f"sacreBLEU: `{rows[0]['bleu_signature']}`; chrF: `{rows[0]['chrf_signature']}`. Error modes: "
                  "length ratio = hypothesis / reference words (sacreBLEU's); repeats = sentences in which a word "
                  f"directly repeats (the references: {fmt(percent(rows[0].get('reference_repeated_words')), '.0f')}%).", ""]
    lines += profile_lines(result.get("profile"))
    lines += ["## The valid set (the union of the corpora's)", "", "| system | passes | BLEU | chrF | length ratio |",
              "|---|---|---|---|---|"]
    lines += [f"| {row['system']} | {row['passes'] or 'AR'} | {row['bleu']:.2f} | {row['chrf']:.2f} | "
              f"{fmt(row.get('length_ratio'), '.2f')} |" for row in result["valid"]]
    lines += training_lines(result)
    lines += ["", "## Models", "", "| model | parameters | training | updates | checkpoint |", "|---|---|---|---|---|"]
    for name, model in result["models"].items():
        lines.append(f"| {name} | {model['parameters']:,} | {model['budget']} | {model['updates']:,} | "
                     f"{model['checkpoint']} |")
    lines += ["", "## Commands", "", "```", *result["commands"], "```", ""]
    return "\n".join(lines)


def target_lines(result: dict) -> list:
    """The targets' figures: the GMLM at TARGET_PASSES against AR beam 4 per test set, BLEU share with its paired
    bootstrap interval (shares.py) and batch-1 speed-up (results written before 2026-12-07 hold no shares)."""
    if not result.get("shares"):
        return []
    first = next(iter(result["shares"].values()))  # every test set's share has the same draws
    lines = ["## Targets", "",
             f"The GMLM at {TARGET_PASSES} passes (`--iter-decode-max-iter {TARGET_PASSES - 1}`) against AR beam 4: "
             "BLEU share (target at least 90%) and batch-1 speed-up (target at least 4x). The interval is the central "
             f"{percent(first['level']):.0f}% of the share over {first['resamples']} paired "
             "bootstrap draws of the test sentences: it covers which sentences the test set holds, not training noise "
             "(seeds, the update a time budget stops at).", "",
             "| test set | BLEU, GMLM / AR beam 4 | share (interval) | speed-up (bs 1) |", "|---|---|---|---|"]
    for corpus, share in result["shares"].items():
        row = next((row for row in result["tables"].get(corpus, []) if row["config"] == TARGET), {})
        if share["share"] is None:
            cell = "– (AR BLEU 0)"
        else:
            cell = f"{percent(share['share']):.0f}% ({percent(share['low']):.0f}–{percent(share['high']):.0f}%)"
        lines.append(f"| {corpus} | {fmt(row.get('bleu'), '.2f')} / {share['baseline_bleu']:.2f} | {cell} | "
                     f"{fmt(row.get('latency_speedup'), '.2f')}x |")
    return lines + [""]


def profile_lines(rows: list) -> list:
    """One table per batch size (rows written before the large-batch profile existed are batch size 1)."""
    lines = []
    for batch_size in sorted({row.get("batch_size", 1) for row in rows or []}):
        table = [row for row in rows if row.get("batch_size", 1) == batch_size]
        sentences = (f"first {table[0]['sentences']} test sentences" if batch_size == 1
                     else f"all {table[0]['sentences']} test sentences")
        lines += [f"## Where the time goes (batch size {batch_size}, {sentences}, one untimed warm-up)", "",
                  "Networks: time inside the encoder and decoder forward calls (with the output projection, "
                  "gmlm's length head and its one-off cross-attention key/value projection); other: search or "
                  "refinement bookkeeping, batching and detokenization. Decoder positions: batch rows x target "
                  "positions of the decoder's logits over all its calls, per sentence (a cached AR step computes one "
                  "per row, a refinement pass the whole target).", "",
                  "| test set | system | ms/sentence | in networks | other | decoder calls per batch "
                  "| ms per decoder call | decoder positions/sentence |", "|---|---|---|---|---|---|---|---|"]
        for row in table:
            lines.append(f"| {row['corpus']} | {row['system']} ({row['config']}) | {row['total_ms']:.1f} | "
                         f"{row['network_ms']:.1f} | {row['other_ms']:.1f} | "
                         f"{row.get('decoder_calls_per_batch', row['decoder_calls']):.1f} | "
                         f"{row['ms_per_decoder_call']:.2f} | {fmt(row.get('decoder_positions'))} |")
        lines.append("")
    return lines


def training_lines(result: dict) -> list:
    plan = result.get("training")
    if not plan:
        return []
    total = plan["ar_minutes"] + plan["minutes"]
    # runs before 2026-12-04 trained the GMLM from scratch with the GMLM's recipe and recorded no AR recipe
    scratch = plan.get("scratch_recipe", plan["gmlm_recipe"])
    ar = f" (`{' '.join(plan['ar_recipe'])}`)" if "ar_recipe" in plan else ""
    # runs before 2026-12-05 trained the teacher with the model's defaults and recorded no teacher recipe
    teacher = f", `{' '.join(plan['teacher_recipe'])}`" if plan.get("teacher_recipe") else ""
    return ["", "## Training", "",
            f"{jobs_text(plan.get('jobs', 2))}, {plan['train_threads']} thread(s) each, dropout {plan['dropout']}"
            f"{', every model under `--amp` (bfloat16 autocast)' if plan.get('amp') else ''}. "
            f"The teacher (t5_ar{teacher}) trains {plan['ar_minutes']:g} min and distils the training set (beam 4); "
            f"the GMLM starts from it "
            f"(`--init-from-ar`, `{' '.join(plan['gmlm_recipe'])}`) and fine-tunes {plan['minutes']:g} min on the "
            f"original pairs. The AR baseline is the teacher's last state trained on for {plan['minutes']:g} min "
            f"more{ar}, {total:g} min in all; the GMLM from scratch (the same data, `{' '.join(scratch)}`) and CMLM "
            f"(on the distilled data) each train {total:g} min: no system has fewer minutes than the warm-started GMLM "
            f"including its warm start. The GMLMs and the AR baseline's last {plan['minutes']:g} min use "
            f"`{' '.join(plan['schedule'])}`; the teacher and CMLM use `inverse_sqrt`. "
            f"GMLM rows decode with `{' '.join(plan['gmlm_decoding'])}`.{batch_text(plan)}"]


def batch_text(plan: dict) -> str:
    """Each model's tokens per update (runs before the night of 2026-12-04 recorded none: 4096 for all)."""
    if "max_tokens" not in plan:
        return ""
    names = {"teacher": "the teacher", "gmlm": "the GMLM", "ar": "the AR baseline", "gmlm_scratch": "the GMLM from "
             "scratch", "cmlm": "CMLM"}
    sizes = ", ".join(f"{names.get(name, name)} {tokens}" for name, tokens in plan["max_tokens"].items())
    return f" Tokens per update (`--max-tokens`; the warm-up's updates scaled to the same tokens): {sizes}."


def jobs_text(jobs: int) -> str:
    """How the training jobs shared the machine (runs before 2026-12-04 evening recorded no --jobs: two)."""
    if jobs == 2:
        return "Two jobs side by side"
    if jobs < 4:
        return f"{jobs} jobs at once"
    return ("Up to four jobs at once (the GMLM from scratch beside the teacher; after distillation the GMLM, the AR "
            "baseline and CMLM beside it)")


def timed_systems(rows: list) -> dict:
    """{system: its rows with a batch-1 latency}, in the table's order; systems scored but not timed (the teacher)
    are left out, so the figure's legend names only what it draws."""
    systems = {}
    for row in rows:
        if "latency_ms" in row:
            systems.setdefault(row["system"], []).append(row)
    return systems


def plot(tables: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(tables), figsize=(6 * len(tables), 5.5), squeeze=False)
    timed = {corpus: timed_systems(rows) for corpus, rows in tables.items()}
    systems = dict.fromkeys(system for per_corpus in timed.values() for system in per_corpus)
    colours = colour_per_label(systems)
    legend = {}  # label -> line, for legend_below
    for axis, (corpus, per_corpus) in zip(axes[0], timed.items()):
        for system, points in per_corpus.items():
            autoregressive = points[0]["passes"] is None
            (line,) = axis.plot([row["latency_ms"] for row in points], [row["bleu"] for row in points],
                                marker="*" if autoregressive else "o", markersize=14 if autoregressive else 6,
                                linestyle="none" if autoregressive else "-", color=colours[system])
            legend.setdefault(system, line)
            for row in points:
                axis.annotate("AR" if autoregressive else str(row["passes"]), (row["latency_ms"], row["bleu"]),
                              textcoords="offset points", xytext=(4, 4), fontsize=7)
        axis.set(xlabel="latency, ms per sentence (batch size 1)", ylabel="sacreBLEU", title=f"test set {corpus}")
        axis.grid(alpha=0.3)
    legend_below(figure, legend)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def colour_per_label(labels) -> dict:
    """{label: one of matplotlib's ten cycle colours}, by the labels' order, so that a label keeps its colour in every
    panel (the axes' own cycle would shift it where a panel lacks a label)."""
    return {label: f"C{index % 10}" for index, label in enumerate(labels)}


def legend_below(figure, handles: dict, columns: int = 3) -> None:
    """One legend for all of FIGURE's panels (HANDLES: label -> artist), below them, so that it hides no point or
    line; the panels are laid out above its rows (a quarter of an inch each)."""
    figure.legend(handles.values(), handles.keys(), loc="lower center", ncol=columns, fontsize=8, frameon=False)
    rows = math.ceil(len(handles) / columns)
    figure.tight_layout(rect=(0, 0.25 * rows / figure.get_figheight(), 1, 1))


def save_report(record: dict, out_dir: Path, render, draw, figure: str) -> None:
    """results.json, RESULTS.md (``render(record)``) and FIGURE (``draw(record, path)``) into OUT_DIR, every path
    in RECORD made relative to the repository first. Shared by the benchmark and the ablation report."""
    record = relative(record)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(record, indent=1))
    (out_dir / "RESULTS.md").write_text(render(record))
    draw(record, out_dir / figure)


def write_report(result: dict, out_dir: Path) -> None:
    """RESULTS.md, results.json (paths relative to the repository) and tradeoff.png into OUT_DIR."""
    save_report(result, out_dir, markdown, lambda record, path: plot(record["tables"], path), "tradeoff.png")
    logger.info("wrote %s/{RESULTS.md,results.json,tradeoff.png}", out_dir)
