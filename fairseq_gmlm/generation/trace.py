"""``--refinement-diagnostics FILE``: the generator writes each sentence's way through the refinement chain.

One JSON object per line, per sentence, in the order fairseq decodes them (by length; ``id`` is the
sentence's index in the data set, as in fairseq-generate's ``H-<id>`` lines; fairseq-interactive does not
hand the generator its ids, so there ``id`` counts the sentences in the order they were decoded, which is the
input order with the default ``--buffer-size``):

    {"id": 7, "predicted_length": 12, "output_length": 11, "reference_length": 13, "steps": 3,
     "passes": [{"tokens": ["▁The", ...], "log_probs": [-0.41, ...]}, ...], "output": ["▁The", ...]}

``passes`` holds the returned candidate after each decoder pass: its words (EOS and padding removed, as
dictionary symbols) and the model's log-probability (natural log) of each. ``predicted_length`` is the canvas
length the length head chose for that candidate, with EOS; ``output_length`` the output's tokens with EOS
after any stutter removal; ``reference_length`` the reference's tokens with EOS (absent without a reference).
``fairseq_gmlm.diagnostics`` and ``gmlm-diagnose`` turn the file into a report and plots.
"""

import json
from pathlib import Path


class TracingGenerator:
    """Wraps a GMLMGenerator built with ``retain_history``; writes the trace records of every batch to ``path``
    (emptied at construction) and hands the hypotheses on, without history unless ``keep_history``."""

    def __init__(self, generator, path: str, dictionary, keep_history: bool = False):
        if not generator.options.retain_history:
            raise ValueError("TracingGenerator needs a generator built with retain_history")
        self.generator = generator
        self.path = Path(path)
        self.dictionary = dictionary
        self.keep_history = keep_history
        self.seen = 0  # sentences traced so far
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("", encoding="utf-8")

    def __getattr__(self, name):  # eos, symbols_to_strip_from_output, options, ... of the wrapped generator
        return getattr(self.generator, name)

    def generate(self, models, sample, *args, **kwargs):
        hypotheses = self.generator.generate(models, sample, *args, **kwargs)
        target = sample.get("target")
        if "id" in sample:
            ids = sample["id"].tolist()
        else:  # fairseq-interactive keeps the ids outside the sample: number sentences as they come
            ids = list(range(self.seen, self.seen + len(hypotheses)))
        self.seen += len(hypotheses)
        with self.path.open("a", encoding="utf-8") as out:
            for row, (sentence, candidates) in enumerate(zip(ids, hypotheses)):
                reference = target[row] if target is not None else None
                out.write(json.dumps(trace_record(sentence, candidates[0], self.dictionary, reference),
                                     ensure_ascii=False) + "\n")
                if not self.keep_history:
                    candidates[0]["history"] = None
        return hypotheses


def trace_record(sentence: int, hypothesis: dict, dictionary, reference=None) -> dict:
    """The JSON object of one sentence from its best hypothesis (with history) and its reference tokens
    (padded, or None)."""
    words = []
    for entry in hypothesis["history"]:
        tokens, log_probs = entry["tokens"], entry["positional_scores"]
        keep = tokens.ne(dictionary.eos()) & tokens.ne(dictionary.pad())
        words.append({"tokens": [dictionary[i] for i in tokens[keep].tolist()],
                      "log_probs": [round(x, 5) for x in log_probs[keep].float().tolist()]})
    output = hypothesis["tokens"]
    record = {
        "id": int(sentence),
        "predicted_length": int(hypothesis["predicted_length"]),
        "output_length": int(output.numel()),
        "steps": int(hypothesis["steps"]),
        "passes": words,
        "output": [dictionary[i] for i in output[output.ne(dictionary.eos())].tolist()],
    }
    if reference is not None:
        record["reference_length"] = int(reference.ne(dictionary.pad()).sum())
    return record
