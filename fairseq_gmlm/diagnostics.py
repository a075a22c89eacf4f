"""What happens inside the refinement chain (PaDIR: Li et al., ICML 2024): per pass and per sentence statistics.

One pass predicts every position independently given the previous pass, so the chain's failure modes show
up as tokens that keep changing, low token probabilities, repeated words ("stutters") and repeated n-grams,
and as a wrong predicted length. The functions here measure these on plain lists of tokens; they need no
model and no torch.

Inputs are ``Trajectory`` records, one per sentence: the words of the returned candidate after each pass
(EOS and padding removed) and, where known, the model's probability of each of those words. Two sources
produce them (``read_trajectories``):

- the JSON lines that ``--refinement-diagnostics FILE`` makes the generator write (``generation/trace.py``):
  tokens, probabilities and lengths of every pass;
- a fairseq-generate output run with ``--retain-iter-history`` (``E-<id>_<step>`` lines, tokens only): any
  iterative-refinement model, without probabilities or reference lengths.

Passes are numbered from 1 (pass 1 is the first parallel prediction), as in ``--print-step``. Lengths count
target tokens (subword pieces) with EOS, the unit of the length head's classes. A sentence whose candidate
stopped early (a pass that changed nothing) keeps its last pass's state in later passes, so every pass's
figures cover all sentences.
"""

import json
import math
import re
from collections import Counter
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence


class Trajectory(NamedTuple):
    """One sentence's way through the chain (the candidate that was returned)."""

    id: int
    passes: List[List[str]]  # per pass, the words of the candidate (EOS excluded)
    probabilities: Optional[List[List[float]]]  # per pass, the model's probability of each of those words
    predicted_length: int  # the canvas length the length head chose, with EOS
    output_length: int  # tokens in the output, with EOS (after any stutter removal)
    reference_length: Optional[int] = None  # with EOS; None without a reference


class PassStatistics(NamedTuple):
    """Figures of one pass over all sentences."""

    step: int  # 1 = the first parallel prediction
    running: int  # sentences whose candidate was still refined at this pass
    words: int  # words (EOS excluded) over all sentences
    changed: Optional[float]  # share of words that differ from the previous pass; None at pass 1
    converged: float  # share of sentences whose candidate did not change at this pass (or stopped before)
    mean_probability: Optional[float]  # mean model probability of a word; None without probabilities
    lowest_probability: Optional[float]  # mean over sentences of the lowest word probability
    stutters: float  # share of words equal to their left neighbour
    repeated: Dict[int, float]  # n -> share of n-grams that repeat an earlier n-gram of the same sentence


class LengthStatistics(NamedTuple):
    """Predicted vs reference vs output length, over sentences (tokens with EOS)."""

    sentences: int
    predicted: float  # mean predicted length
    output: float  # mean output length
    reference: Optional[float]  # mean reference length; None (and the fields below None) without references
    error: Optional[float]  # mean predicted - reference
    absolute_error: Optional[float]  # mean |predicted - reference|
    exact: Optional[float]  # share of sentences with predicted == reference
    too_short: Optional[float]  # share with predicted < reference
    too_long: Optional[float]  # share with predicted > reference


# ---- statistics of token lists ------------------------------------------------------------------------


def tokens_changed(previous: Sequence, current: Sequence) -> int:
    """Positions whose token differs between two passes; a length difference counts as that many changes
    (the canvas keeps its length in GMLM refinement; other refiners may insert or delete)."""
    return sum(a != b for a, b in zip(previous, current)) + abs(len(previous) - len(current))


def stutters(tokens: Sequence) -> int:
    """Tokens equal to their left neighbour ("a a b" has one)."""
    return sum(tokens[i] == tokens[i - 1] for i in range(1, len(tokens)))


def ngrams(tokens: Sequence, n: int) -> int:
    """The number of n-grams (positions) in ``tokens``."""
    return max(len(tokens) - n + 1, 0)


def repeated_ngrams(tokens: Sequence, n: int) -> int:
    """n-gram occurrences that repeat an earlier n-gram of the same sequence ("a b a b a" has two 2-grams
    repeated: the second "a b" and the second "b a")."""
    counts = Counter(tuple(tokens[i:i + n]) for i in range(ngrams(tokens, n)))
    return sum(count - 1 for count in counts.values())


def state_at(trajectory: Trajectory, index: int) -> int:
    """The pass index (0-based) whose state stands for pass ``index``: a stopped candidate keeps its last."""
    return min(index, len(trajectory.passes) - 1)


def converged_at(passes: Sequence[Sequence], index: int) -> bool:
    """Whether pass ``index`` (0-based) left the candidate unchanged; past its last pass, whether its last
    pass did. Pass 0 changes the initial canvas, so it never counts as converged."""
    index = min(index, len(passes) - 1)
    return index > 0 and list(passes[index]) == list(passes[index - 1])


def pass_statistics(trajectories: Sequence[Trajectory], orders: Sequence[int] = (2, 3)) -> List[PassStatistics]:
    """Per pass (up to the longest trajectory), the figures of ``PassStatistics`` over all sentences."""
    if not trajectories:
        return []
    have_probabilities = all(t.probabilities is not None for t in trajectories)
    table = []
    for index in range(max(len(t.passes) for t in trajectories)):
        words = changed = stutter = 0
        grams, repeats = Counter(), Counter()
        probability_sum, lowest = 0.0, []
        for t in trajectories:
            tokens = t.passes[state_at(t, index)]
            words += len(tokens)
            stutter += stutters(tokens)
            for n in orders:
                grams[n] += ngrams(tokens, n)
                repeats[n] += repeated_ngrams(tokens, n)
            if index > 0:
                changed += tokens_changed(t.passes[state_at(t, index - 1)], tokens)
            if have_probabilities and tokens:
                probabilities = t.probabilities[state_at(t, index)]
                probability_sum += sum(probabilities)
                lowest.append(min(probabilities))
        table.append(PassStatistics(
            step=index + 1,
            running=sum(len(t.passes) > index for t in trajectories),
            words=words,
            changed=_share(changed, words) if index > 0 else None,
            converged=_share(sum(converged_at(t.passes, index) for t in trajectories), len(trajectories)),
            mean_probability=_share(probability_sum, words) if have_probabilities else None,
            lowest_probability=_mean(lowest) if have_probabilities else None,
            stutters=_share(stutter, words),
            repeated={n: _share(repeats[n], grams[n]) for n in orders},
        ))
    return table


def length_statistics(trajectories: Sequence[Trajectory]) -> LengthStatistics:
    """Predicted vs reference vs output length over ``trajectories``; the reference figures cover the
    sentences that have a reference, and are None when none has."""
    referenced = [t for t in trajectories if t.reference_length is not None]
    errors = [t.predicted_length - t.reference_length for t in referenced]
    return LengthStatistics(
        sentences=len(trajectories),
        predicted=_mean([t.predicted_length for t in trajectories]),
        output=_mean([t.output_length for t in trajectories]),
        reference=_mean([t.reference_length for t in referenced]) if referenced else None,
        error=_mean(errors) if referenced else None,
        absolute_error=_mean([abs(e) for e in errors]) if referenced else None,
        exact=_share(sum(e == 0 for e in errors), len(errors)) if referenced else None,
        too_short=_share(sum(e < 0 for e in errors), len(errors)) if referenced else None,
        too_long=_share(sum(e > 0 for e in errors), len(errors)) if referenced else None,
    )


def total_changes(trajectory: Trajectory) -> int:
    """Tokens changed over all passes after the first."""
    return sum(tokens_changed(a, b) for a, b in zip(trajectory.passes, trajectory.passes[1:]))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _share(part: float, whole: float) -> float:
    return part / whole if whole else math.nan


# ---- reading --------------------------------------------------------------------------------------------


def trajectory_from_record(record: dict) -> Trajectory:
    """A Trajectory from one JSON object written by ``--refinement-diagnostics`` (``generation/trace.py``)."""
    return Trajectory(
        id=int(record["id"]),
        passes=[list(p["tokens"]) for p in record["passes"]],
        probabilities=[[math.exp(x) for x in p["log_probs"]] for p in record["passes"]],
        predicted_length=int(record["predicted_length"]),
        output_length=int(record["output_length"]),
        reference_length=record.get("reference_length"),
    )


_GENERATE_LINE = re.compile(r"^(?P<kind>[EP])-(?P<id>\d+)(?:_(?P<step>\d+))?\t(?P<text>.*)$")


def trajectories_from_generate_output(lines: Iterable[str]) -> List[Trajectory]:
    """Trajectories from fairseq-generate's output with ``--retain-iter-history``: ``E-<id>_<step>`` lines
    hold the tokens of each pass (without EOS), ``P-<id>`` the output's per-token scores (one per output token,
    EOS included). Probabilities and reference lengths are not in this output (None); the predicted length is
    read as the last pass's tokens plus EOS."""
    passes: Dict[int, Dict[int, List[str]]] = {}
    output_lengths: Dict[int, int] = {}
    for line in lines:
        match = _GENERATE_LINE.match(line.rstrip("\n"))
        if not match:
            continue
        sentence, text = int(match["id"]), match["text"]
        if match["kind"] == "E":
            if match["step"] is None:
                continue
            passes.setdefault(sentence, {})[int(match["step"])] = text.split()
        else:
            output_lengths[sentence] = len(text.split())
    if not passes:
        raise ValueError("no E-<id>_<step> lines: run fairseq-generate with --retain-iter-history "
                         "(or use --refinement-diagnostics FILE with translation_gmlm)")
    trajectories = []
    for sentence in sorted(passes):
        steps = passes[sentence]
        ordered = [steps[s] for s in sorted(steps)]
        trajectories.append(Trajectory(
            id=sentence, passes=ordered, probabilities=None, predicted_length=len(ordered[-1]) + 1,
            output_length=output_lengths.get(sentence, len(ordered[-1]) + 1),
        ))
    return trajectories


def read_trajectories(lines: Iterable[str]) -> List[Trajectory]:
    """Trajectories sorted by sentence id, from either ``--refinement-diagnostics`` JSON lines or a
    fairseq-generate output (recognised by its first non-empty line)."""
    lines = list(lines)
    first = next((line for line in lines if line.strip()), "")
    if first.lstrip().startswith("{"):
        return sorted((trajectory_from_record(json.loads(line)) for line in lines if line.strip()),
                      key=lambda t: t.id)
    return trajectories_from_generate_output(lines)


# ---- the text report -------------------------------------------------------------------------------------


def format_report(passes: Sequence[PassStatistics], lengths: LengthStatistics) -> str:
    """The per-pass table and the length summary as plain text."""
    orders = list(passes[0].repeated) if passes else []
    header = ["pass", "running", "words", "changed", "converged", "mean p", "lowest p", "stutters"]
    header += [f"rep {n}-gram" for n in orders]
    rows = [header]
    for p in passes:
        rows.append([str(p.step), str(p.running), str(p.words), _percent(p.changed), _percent(p.converged),
                     _number(p.mean_probability), _number(p.lowest_probability), _percent(p.stutters)]
                    + [_percent(p.repeated[n]) for n in orders])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    table = "\n".join("  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows)
    text = [
        f"Refinement diagnostics: {lengths.sentences} sentences, up to {len(passes)} passes",
        "",
        "Per pass (a sentence that stopped early keeps its last state in later passes):",
        "  changed: share of words that differ from the previous pass; converged: share of sentences whose",
        "  candidate did not change at this pass; mean p: mean probability of a word; lowest p: mean over",
        "  sentences of the lowest word probability; stutters: share of words equal to their left neighbour;",
        "  rep n-gram: share of n-grams repeating an earlier one in the same sentence. Words are subword tokens.",
        "",
        table,
        "",
        "Lengths (subword tokens with EOS):",
        f"  predicted (length head) {lengths.predicted:.2f}, output {lengths.output:.2f}, "
        f"dropped by stutter removal {lengths.predicted - lengths.output:.2f} per sentence",
    ]
    if lengths.reference is not None:
        text += [
            f"  reference {lengths.reference:.2f}; predicted - reference {lengths.error:+.2f} "
            f"(mean absolute {lengths.absolute_error:.2f})",
            f"  predicted length exact {_percent(lengths.exact)}, too short {_percent(lengths.too_short)}, "
            f"too long {_percent(lengths.too_long)}",
        ]
    else:
        text.append("  reference lengths: not in this input")
    return "\n".join(text) + "\n"


def _percent(value: Optional[float]) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def _number(value: Optional[float]) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3f}"
