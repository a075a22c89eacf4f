"""Report on what refinement did, pass by pass: from a --refinement-diagnostics trace or a generate output.

    fairseq-generate DATA --user-dir fairseq_gmlm --task translation_gmlm --path MODEL.pt \\
        --iter-decode-max-iter 4 --refinement-diagnostics work/diag/trace.jsonl ... > work/diag/generate.txt
    gmlm-diagnose work/diag/trace.jsonl --out work/diag

INPUT is either the JSON lines written by ``--refinement-diagnostics`` (tokens, probabilities and lengths of
every pass) or a fairseq-generate output run with ``--retain-iter-history`` (any iterative-refinement model;
tokens only, so no confidence or reference-length figures). Writes to --out:

    report.txt      per pass: words changed, sentences converged, mean and lowest token probability, stutters,
                    repeated n-grams; lengths: predicted vs reference vs output (also printed)
    sentences.tsv   per sentence: id, passes, predicted / reference / output length, lowest final probability
    passes.png      the per-pass figures as curves
    lengths.png     predicted vs reference length, and the distribution of their difference
    trajectory.png  one sentence's tokens after each pass, coloured by the model's probability (--sentence)

Definitions are in fairseq_gmlm/diagnostics.py and docs/diagnostics.md. Plots need matplotlib (the ``bench``
extra); --no-plots writes the text files only.
"""

import argparse
import logging
import math
from pathlib import Path

from fairseq_gmlm.diagnostics import (
    format_report, length_statistics, pass_statistics, read_trajectories, tokens_changed, total_changes,
)

TRAJECTORY_WORDS = (6, 25)  # the default sentence for trajectory.png has this many words (bounds included)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="--refinement-diagnostics JSON lines, or fairseq-generate output with "
                                      "--retain-iter-history")
    parser.add_argument("--out", required=True, help="directory for report.txt, sentences.tsv and the plots")
    parser.add_argument("--sentence", type=int, help="sentence id drawn in trajectory.png (default: among those "
                        f"with {TRAJECTORY_WORDS[0]}-{TRAJECTORY_WORDS[1]} words, the one changed most over passes)")
    parser.add_argument("--orders", type=int, nargs="+", default=[2, 3], help="n of the repeated n-gram columns")
    parser.add_argument("--no-plots", action="store_true", help="write report.txt and sentences.tsv only")
    args = parser.parse_args(argv)

    trajectories = read_trajectories(Path(args.input).read_text(encoding="utf-8").splitlines())
    if not trajectories:
        parser.error(f"{args.input} holds no sentences")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    passes = pass_statistics(trajectories, args.orders)
    lengths = length_statistics(trajectories)
    report = format_report(passes, lengths)
    (out / "report.txt").write_text(report, encoding="utf-8")
    write_sentences(trajectories, out / "sentences.tsv")
    print(report, end="")
    if args.no_plots:
        return
    chosen = pick_sentence(trajectories, args.sentence)
    plot_passes(passes, out / "passes.png")
    plot_lengths(trajectories, out / "lengths.png")
    plot_trajectory(chosen, out / "trajectory.png")
    print(f"wrote {out}/report.txt, sentences.tsv, passes.png, lengths.png, trajectory.png (sentence {chosen.id})")


def write_sentences(trajectories, path: Path) -> None:
    rows = ["id\tpasses\tpredicted_length\treference_length\toutput_length\tlowest_final_probability"]
    for t in trajectories:
        lowest = min(t.probabilities[-1]) if t.probabilities and t.probabilities[-1] else None
        rows.append("\t".join(str(x) for x in (
            t.id, len(t.passes), t.predicted_length, "" if t.reference_length is None else t.reference_length,
            t.output_length, "" if lowest is None else f"{lowest:.4f}",
        )))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def pick_sentence(trajectories, wanted=None):
    """The trajectory with id ``wanted``, else the most-changed one of a readable length."""
    if wanted is not None:
        for t in trajectories:
            if t.id == wanted:
                return t
        raise SystemExit(f"--sentence {wanted}: no such sentence id in the input")
    readable = [t for t in trajectories if TRAJECTORY_WORDS[0] <= len(t.passes[-1]) <= TRAJECTORY_WORDS[1]]
    return max(readable or trajectories, key=lambda t: (total_changes(t), -t.id))


def pyplot():
    import matplotlib

    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # importing fairseq lowers the root logger's level
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_passes(passes, path: Path) -> None:
    plt = pyplot()
    steps = [p.step for p in passes]
    figure, axes = plt.subplots(2, 3, figsize=(12, 6.5))
    panels = [
        ("words changed from the previous pass", [_nan(p.changed) for p in passes]),
        ("sentences converged", [p.converged for p in passes]),
        ("stutters (word = left neighbour)", [p.stutters for p in passes]),
    ]
    for axis, (title, values) in zip(axes[0], panels):
        axis.plot(steps, values, marker="o")
        axis.set_title(title, fontsize=10)
        axis.set_ylim(bottom=0)
    axis = axes[1][0]
    if passes[0].mean_probability is not None:
        axis.plot(steps, [p.mean_probability for p in passes], marker="o", label="mean")
        axis.plot(steps, [p.lowest_probability for p in passes], marker="s", label="lowest (mean over sentences)")
        axis.set_ylim(0, 1)
        axis.legend(fontsize=8)
    else:
        axis.text(0.5, 0.5, "no probabilities in this input", ha="center", va="center", transform=axis.transAxes)
    axis.set_title("word probability", fontsize=10)
    axis = axes[1][1]
    for n in passes[0].repeated:
        axis.plot(steps, [p.repeated[n] for p in passes], marker="o", label=f"{n}-grams")
    axis.set_ylim(bottom=0)
    axis.legend(fontsize=8)
    axis.set_title("repeated n-grams (share)", fontsize=10)
    axis = axes[1][2]
    axis.bar(steps, [p.running for p in passes])
    axis.set_title("sentences still refined", fontsize=10)
    for axis in axes.flat:
        axis.set_xlabel("pass")
        axis.set_xticks(steps)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_lengths(trajectories, path: Path) -> None:
    plt = pyplot()
    predicted = [t.predicted_length for t in trajectories]
    output = [t.output_length for t in trajectories]
    referenced = [t for t in trajectories if t.reference_length is not None]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    axis = axes[0]
    if referenced:
        reference = [t.reference_length for t in referenced]
        axis.scatter(reference, [t.predicted_length for t in referenced], s=8, alpha=0.5, label="predicted")
        axis.scatter(reference, [t.output_length for t in referenced], s=8, alpha=0.5, marker="x", label="output")
        top = max(reference + predicted)
        axis.plot([0, top], [0, top], color="grey", linewidth=1)
        axis.set_xlabel("reference length")
        axis.set_ylabel("length")
        axis.legend(fontsize=8)
        axis.set_title("lengths (tokens with EOS)", fontsize=10)
        errors = [t.predicted_length - t.reference_length for t in referenced]
        axes[1].hist(errors, bins=range(min(errors), max(errors) + 2), align="left")
        axes[1].set_xlabel("predicted - reference")
        axes[1].set_title("length error of the length head", fontsize=10)
    else:
        axis.scatter(predicted, output, s=8, alpha=0.5)
        axis.set_xlabel("predicted length")
        axis.set_ylabel("output length")
        axis.set_title("lengths (tokens with EOS; no references in this input)", fontsize=10)
        axes[1].hist([p - o for p, o in zip(predicted, output)], bins=10)
        axes[1].set_xlabel("predicted - output (dropped stutters)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_trajectory(trajectory, path: Path) -> None:
    """Rows: passes; columns: positions; cell colour: the model's probability of the token (grey without
    probabilities); a bold frame marks a token that changed since the previous pass."""
    plt = pyplot()
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    rows, columns = len(trajectory.passes), max(len(p) for p in trajectory.passes)
    colours, norm = colormaps["RdYlGn"], Normalize(0, 1)
    figure, axis = plt.subplots(figsize=(min(1.0 + 0.85 * columns, 40), 1.2 + 0.5 * rows))
    for row, tokens in enumerate(trajectory.passes):
        previous = trajectory.passes[row - 1] if row > 0 else None
        for column, token in enumerate(tokens):
            probability = trajectory.probabilities[row][column] if trajectory.probabilities else None
            face = colours(norm(probability)) if probability is not None else (0.9, 0.9, 0.9, 1.0)
            changed = previous is not None and (column >= len(previous) or previous[column] != token)
            axis.add_patch(Rectangle((column, row), 1, 1, facecolor=face, edgecolor="black",
                                     linewidth=2.0 if changed else 0.3))
            axis.text(column + 0.5, row + 0.5, token[:12], ha="center", va="center", fontsize=7,
                      fontweight="bold" if changed else "normal")
    axis.set_xlim(0, columns)
    axis.set_ylim(rows, 0)
    axis.set_yticks([r + 0.5 for r in range(rows)], [f"pass {r + 1}" for r in range(rows)])
    axis.set_xticks([c + 0.5 for c in range(columns)], [str(c) for c in range(columns)], fontsize=7)
    axis.set_xlabel("position")
    changes = [tokens_changed(a, b) for a, b in zip(trajectory.passes, trajectory.passes[1:])]
    reference = "" if trajectory.reference_length is None else f", reference length {trajectory.reference_length}"
    axis.set_title(f"sentence {trajectory.id}: predicted length {trajectory.predicted_length}{reference}, "
                   f"tokens changed per pass {changes}", fontsize=9)
    if trajectory.probabilities:
        figure.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=colours), ax=axis, label="token probability",
                        fraction=0.02, pad=0.01)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _nan(value):
    return math.nan if value is None else value


if __name__ == "__main__":
    main()
