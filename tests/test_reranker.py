"""--iter-decode-with-external-reranker: a t5_ar (last in --path) chooses among the GMLM's candidates (noisy
parallel decoding), as fairseq's NAT generator does with an autoregressive reranker."""

import pytest
import torch

from conftest import PLUGIN, decoding_options, gmlm_args, run_cli, train

from fairseq_gmlm.errors import UsageError
from fairseq_gmlm.generation.refinement import compact, reranker_scores
from fairseq_gmlm.models.t5_common import shifted_right


def test_compact_moves_the_kept_tokens_to_the_front_in_order():
    tokens = torch.tensor([[5, 5, 6, 7, 2, 1], [8, 9, 9, 9, 2, 1]])
    keep = torch.tensor([[True, False, True, True, True, False], [True, True, False, False, True, False]])
    assert compact(tokens, keep, pad=1).tolist() == [[5, 6, 7, 2, 1, 1], [8, 9, 2, 1, 1, 1]]


def test_shifted_right_starts_with_eos_and_drops_the_last_token():
    assert shifted_right(torch.tensor([[5, 6, 2, 1]]), eos=2).tolist() == [[2, 5, 6, 2]]


def test_shifted_right_with_pad_keeps_each_row_s_padding():
    targets = torch.tensor([[5, 6, 2, 1], [7, 2, 1, 1], [8, 9, 4, 2]])
    assert shifted_right(targets, eos=2, pad=1).tolist() == [[2, 5, 6, 1], [2, 7, 1, 1], [2, 8, 9, 4]]


@pytest.fixture(scope="module")
def pair(reversal_corpus, ar_checkpoint, tmp_path_factory):
    """A GMLM warm-started from the AR checkpoint and trained 30 updates, and that AR model: the reranker."""
    save_dir = tmp_path_factory.mktemp("gmlm")
    train(reversal_corpus / "bin", save_dir, *gmlm_args("--max-update", "30", "--position-input", "learned",
                                                         "--init-from-ar", ar_checkpoint))
    return save_dir / "checkpoint_last.pt", ar_checkpoint


def load(data, paths, **flags):
    """The task, models and generator fairseq-generate would build for ``--path PATHS`` and FLAGS."""
    from fairseq import checkpoint_utils, options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    parser = options.get_generation_parser()
    arguments = [str(data), "--user-dir", PLUGIN, "--task", "translation_gmlm", "--cpu",
                 "--path", ":".join(map(str, paths))]
    for name, value in flags.items():
        arguments += [f"--{name.replace('_', '-')}"] + ([] if value is True else [str(value)])
    args = options.parse_args_and_arch(parser, arguments)
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    models, _ = checkpoint_utils.load_model_ensemble([str(path) for path in paths], task=task)
    return task, models, task.build_generator(models, args)


def test_the_reranker_picks_the_candidate_it_scores_best(reversal_corpus, pair):
    """Same candidates with and without the reranker; with it, each sentence's output is the one whose mean
    log-probability under the AR model, computed alone and unpadded, is highest."""
    data = reversal_corpus / "bin"
    flags = dict(iter_decode_max_iter=2, iter_decode_with_beam=3, length_offsets=3)
    task, models, reranked = load(data, pair, iter_decode_with_external_reranker=True, **flags)
    _, _, plain = load(data, pair[:1], **flags)
    task.load_dataset("test")
    sample = task.dataset("test").collater([task.dataset("test")[i] for i in range(40)])
    ar = models[-1]
    assert type(ar).__name__ == "T5ARModel"

    def ar_score(source, hypothesis):
        one = lambda t: t.unsqueeze(0)  # noqa: E731
        source = source[source.ne(task.src_dict.pad())]
        return float(reranker_scores(ar, one(source), torch.tensor([source.numel()]), torch.tensor([0]),
                                     one(hypothesis), task.vocab))

    with torch.no_grad():
        chosen = task.inference_step(reranked, models, sample)
        own = task.inference_step(plain, models[:1], sample)
    differ = 0
    for row, (with_ar, without) in enumerate(zip(chosen, own)):
        source = sample["net_input"]["src_tokens"][row]
        assert ar_score(source, with_ar[0]["tokens"]) >= ar_score(source, without[0]["tokens"]) - 1e-4
        differ += not torch.equal(with_ar[0]["tokens"], without[0]["tokens"])
    assert differ > 0  # the AR model changed some choices: the comparison above was not vacuous


def test_reranking_through_fairseq_generate_and_its_errors(reversal_corpus, pair):
    data = reversal_corpus / "bin"
    gmlm, ar = pair
    common = [data, "--user-dir", PLUGIN, "--task", "translation_gmlm", "--cpu", "--iter-decode-max-iter", "2",
              "--batch-size", "16"]
    result = run_cli("fairseq-generate", *common, "--path", f"{gmlm}:{ar}", "--iter-decode-with-external-reranker",
                     "--iter-decode-with-beam", "3")
    ids = sorted(int(line.split("\t")[0][2:]) for line in result.stdout.splitlines() if line.startswith("H-"))
    assert ids == list(range(100))

    one_candidate = run_cli("fairseq-generate", *common, "--path", f"{gmlm}:{ar}",
                            "--iter-decode-with-external-reranker", check=False)
    assert one_candidate.returncode != 0 and "add --iter-decode-with-beam K" in one_candidate.stderr
    ar_first = run_cli("fairseq-generate", *common, "--path", f"{ar}:{gmlm}", "--iter-decode-with-external-reranker",
                       "--iter-decode-with-beam", "3", check=False)
    assert ar_first.returncode != 0 and "autoregressive model (t5_ar) last in --path" in ar_first.stderr
    no_flag = run_cli("fairseq-generate", *common, "--path", f"{gmlm}:{ar}", check=False)
    assert no_flag.returncode != 0 and "put it last and add --iter-decode-with-external-reranker" in no_flag.stderr


def test_a_reranker_needs_more_than_one_candidate():
    with pytest.raises(UsageError, match="--iter-decode-with-external-reranker chooses among"):
        decoding_options(reranker=True).check()
    decoding_options(reranker=True, restarts=2, decoder_init="random").check()
