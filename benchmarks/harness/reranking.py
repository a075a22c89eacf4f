"""Does an autoregressive reranker close the GMLM's gap? (``--iter-decode-with-external-reranker``)

    python -m benchmarks.harness.ablate --work work/ablate --variants mask_high_lr2e-3_raw_dropout0 --stop-after 4
    python -m benchmarks.harness.reranking --work work/ablate --out work/ablate/reranking.md

from the repository root. Decodes every corpus's valid set of an ablation run with its GMLM variant (--gmlm)
alone and with the teacher it started from (the t5_ar trained --ar-minutes) choosing among its candidates,
beside the teacher and the variant's AR twin (the teacher trained on as long as the GMLM, with the variant's
regularisation or schedule flags) with beam 4. Then times each
configuration at batch size 1 on the first --latency-sentences valid sentences of the last corpus (LibreOffice
help by default): --repeats interleaved rounds in this process, the median kept. The teacher's minutes are
part of the warm-started GMLM's budget, so reranking with it adds decoding cost, not training.
"""

import argparse
import json
import logging
from pathlib import Path

from benchmarks.harness import evaluate, speed, systems
from benchmarks.harness.ablate import VARIANTS, twin_name
from benchmarks.harness.systems import RERANKER, Config

# The mode length, as the table of docs/decoding.md ("Reranking with the teacher") was measured; the benchmark
# decodes the mean since 2026-12-07 (systems.GMLM_DECODING).
MODE = ["--length-choice", "mode"]
P5 = ["--iter-decode-max-iter", "4", *MODE]


def configs() -> list:
    """The table's rows."""
    def gmlm(key, label, flags, model="gmlm", passes=5):
        return Config(key, label, model, passes, flags)

    return [
        Config("teacher_beam4", "teacher t5_ar, beam 4", "teacher", None, ["--beam", "4"]),
        Config("twin_beam4", "AR twin t5_ar, beam 4", "ar_twin", None, ["--beam", "4"]),
        gmlm("gmlm_p5", "GMLM, 1 length", P5),
        gmlm("gmlm_p5_stutter", "GMLM, 1 length, stutters dropped", P5 + ["--stutter-remask", "on"]),
        gmlm("gmlm_p5_len3_off3", "GMLM, 3 lengths x 3 offsets, own score", P5 + ["--iter-decode-with-beam", "3",
                                                                                  "--length-offsets", "3"]),
        gmlm("rerank_p5_off3", "GMLM + teacher rerank, 1 length x 3 offsets", P5 + RERANKER + ["--length-offsets", "3"],
             "reranked"),
        gmlm("rerank_p5_len3", "GMLM + teacher rerank, 3 lengths", P5 + RERANKER + ["--iter-decode-with-beam", "3"],
             "reranked"),
        gmlm("rerank_p5_len3_off3", "GMLM + teacher rerank, 3 lengths x 3 offsets",
             P5 + RERANKER + ["--iter-decode-with-beam", "3", "--length-offsets", "3"], "reranked"),
        gmlm("rerank_p5_len5_off3", "GMLM + teacher rerank, 5 lengths x 3 offsets",
             P5 + RERANKER + ["--iter-decode-with-beam", "5", "--length-offsets", "3"], "reranked"),
        gmlm("rerank_p5_len3_off3_sampled", "GMLM + teacher rerank, 3 lengths x 3 offsets x 2 sampled (top 5)",
             P5 + RERANKER + ["--iter-decode-with-beam", "3", "--length-offsets", "3", "--restarts", "2", "--sampling",
                            "--sampling-topk", "5", "--beam", "1"], "reranked"),
        gmlm("rerank_p3_len3_off3", "GMLM + teacher rerank, 3 lengths x 3 offsets, 3 passes",
             ["--iter-decode-max-iter", "2", *MODE, *RERANKER, "--iter-decode-with-beam", "3",
              "--length-offsets", "3"], "reranked", 3),
    ]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="the ablation's working folder")
    parser.add_argument("--gmlm", default="mask_high_lr2e-3_raw_dropout0", choices=list(VARIANTS),
                        help="the ablation variant to decode (default: the chosen recipe's, decoded with the "
                             "mode length)")
    parser.add_argument("--src", default="de"), parser.add_argument("--tgt", default="en")
    parser.add_argument("--latency-sentences", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, help="markdown table (also printed); the rows go to OUT.json")
    return parser.parse_args(argv)


def main(argv=None):
    import torch

    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(name)s | %(message)s")
    torch.set_num_threads(args.threads)
    info = json.loads((args.work / "data" / "corpora.json").read_text())
    models = args.work / "models"
    twin = twin_name(VARIANTS[args.gmlm]["flags"])  # the variant's own AR twin (ablate.TWIN_FLAGS)
    checkpoints = {"teacher": models / "teacher" / "final.pt", "ar_twin": models / twin / "final.pt",
                   "gmlm": models / args.gmlm / "final.pt"}
    checkpoints["reranked"] = f"{checkpoints['gmlm']}:{checkpoints['teacher']}"
    tasks = {"teacher": "translation", "ar_twin": "translation", "gmlm": "translation_gmlm",
             "reranked": "translation_gmlm"}
    valids = info["valids"]
    loaded = systems.load_all({name: str(path) for name, path in checkpoints.items()}, info["bin"], args.src,
                              args.tgt, [valid["subset"] for valid in valids.values()], "cpu", "fp32", tasks)
    rows = configs()
    scores = evaluate.evaluate(loaded, rows, valids, args.work / "reranking")
    timed_corpus = list(valids)[-1]
    latency = latency_ms(loaded, rows, valids[timed_corpus], args.latency_sentences, args.repeats)
    table = markdown(rows, scores, latency, list(valids), timed_corpus, args)
    print(table)
    if args.out:
        args.out.write_text(table, encoding="utf-8")
        args.out.with_suffix(".json").write_text(json.dumps({"scores": scores, "latency_ms": latency}, indent=1))


def latency_ms(loaded: dict, rows: list, valid: dict, sentences: int, repeats: int) -> dict:
    """{config key: median ms per sentence at batch size 1}, the configurations interleaved per round."""
    measured = speed.measure(loaded, rows, {"valid": valid}, sentences, large_batch=0, repeats=repeats)
    return {row["config"]: row["latency_ms"] for row in measured}


def markdown(rows: list, scores: list, latency: dict, corpora: list, timed_corpus: str, args) -> str:
    by_key = {(row["corpus"], row["config"]): row for row in scores}
    head = ["configuration", "flags"] + [f"{corpus} BLEU / chrF / length ratio / repeats" for corpus in corpora]
    head += [f"ms per sentence, batch 1 ({timed_corpus})", "x faster than the twin's beam 4"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for config in rows:
        cells = [config.system, "`" + " ".join(config.flags) + "`"]
        for corpus in corpora:
            row = by_key[(corpus, config.key)]
            cells.append(f"{row['bleu']:.2f} / {row['chrf']:.2f} / {row['length_ratio']:.2f} / "
                         f"{100 * row['repeated_words']:.0f}%")
        cells += [f"{latency[config.key]:.1f}", f"{latency['twin_beam4'] / latency[config.key]:.2f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    signature = scores[0]["bleu_signature"], scores[0]["chrf_signature"]
    lines += ["", f"sacreBLEU `{signature[0]}`; chrF `{signature[1]}`. Latency: the first {args.latency_sentences} "
                  f"valid sentences, {args.repeats} interleaved rounds, median; {args.threads} threads."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
