"""Iterative parallel refinement for GMLMs (PaDIR: Li et al., ICML 2024; Mask-Predict: Ghazvininejad et al.,
EMNLP 2019).

The driver reads as the method does: initialise candidates from the predicted lengths, then per pass predict
every position, reject some predictions, replace the rejected ones, and stop a candidate once a pass changes
nothing; finally (under ``--stutter-remask on``) drop stutters, score the candidates and keep the best per
sentence (by the GMLM's own scores, or, with ``--iter-decode-with-external-reranker``, by an autoregressive
model's: noisy parallel decoding, Gu et al., ICLR 2018).

``max_iter`` keeps fairseq's meaning (``--iter-decode-max-iter``): refinements after the first parallel
prediction, so at most ``max_iter + 1`` decoder passes.

Shapes: B sentences, N = B x lengths x offsets x restarts candidates, T target length, V vocabulary.
"""

import functools
import logging
from typing import List, NamedTuple, Optional

import torch
import torch.nn.functional as F
from fairseq import utils

from fairseq_gmlm.errors import UsageError
from fairseq_gmlm.generation.rejecters import (
    CANDIDATE_SCORES, Rejection, best_candidates, candidate_scores, less_confident_copies, next_best, predictable,
    reject, replace, stutter,
)
from fairseq_gmlm.models.length_head import MIN_LENGTH, expected_lengths, top_lengths
from fairseq_gmlm.models.t5_common import shifted_right

logger = logging.getLogger(__name__)


class RefinementOptions(NamedTuple):
    """Resolved decoding options, built by TranslationGMLMTask.refinement_options: the first group from fairseq's
    generation flags, the rest from translation_gmlm's config fields of the same names, where their defaults
    and help live."""

    # fairseq's flags
    max_iter: int  # --iter-decode-max-iter: refinements after the first pass
    length_candidates: int  # --iter-decode-with-beam
    sampling: bool
    temperature: float
    top_k: int  # --sampling-topk; 0: sample from the whole vocabulary
    max_len_a: float  # candidate lengths <= max_len_a * source length + max_len_b
    max_len_b: int
    early_stop: bool  # not --iter-decode-force-max-iter
    retain_history: bool  # --retain-iter-history
    retain_dropout: bool
    reranker: bool  # --iter-decode-with-external-reranker: the last model of --path rescores the candidates
    # translation_gmlm's
    decoder_init: str
    rejecter: str
    reject_k: int
    reject_fraction: float
    reject_threshold: float
    stutter_remask: str  # a name of STUTTER_RULES
    replacement: str
    repredict: str
    restarts: int
    length_choice: str
    length_offsets: int
    brevity_penalty: float
    candidate_score: str
    stop_rule: str
    length_group_size: int

    @property
    def rejection(self) -> Rejection:
        return Rejection(**{name: getattr(self, name) for name in Rejection._fields})

    def check(self) -> "RefinementOptions":
        """Return self, or raise a UsageError naming the flag to change."""
        if self.max_iter < 0:
            raise UsageError(f"--iter-decode-max-iter must be >= 0 (0 = one decoder pass), got {self.max_iter}")
        if self.length_candidates < 1:
            raise UsageError(f"--iter-decode-with-beam must be >= 1 length candidates, got {self.length_candidates}")
        if self.length_offsets < 1 or self.length_offsets % 2 == 0:
            raise UsageError(f"--length-offsets must be an odd number >= 1 (B tries each predicted length shifted by "
                             f"-(B-1)/2 ... +(B-1)/2; 1 = no offsets), got {self.length_offsets}")
        if self.restarts < 1:
            raise UsageError(f"--restarts must be >= 1, got {self.restarts}")
        if self.length_group_size < 0:
            raise UsageError(f"--length-group-size must be >= 0 (0: refine a batch's candidates together), got "
                             f"{self.length_group_size}")
        if self.restarts > 1 and self.decoder_init == "mask" and not self.sampling and not self.retain_dropout:
            raise UsageError(f"--restarts {self.restarts} with --decoder-init mask and argmax decoding gives "
                             f"{self.restarts} identical candidates per length: add --decoder-init random (random "
                             f"initial words) or --sampling (with --beam 1) to make them differ, or use --restarts 1")
        if self.reranker and self.length_candidates * self.length_offsets * self.restarts == 1:
            raise UsageError("--iter-decode-with-external-reranker chooses among a sentence's candidates, and there is "
                             "one: add --iter-decode-with-beam K (K > 1), --length-offsets 3 or --restarts R")
        if self.decoder_init not in ("mask", "random"):
            raise UsageError(f"--decoder-init must be 'mask' or 'random', got {self.decoder_init!r}")
        self.rejection.check()
        for flag, value, choices in (("--candidate-score", self.candidate_score, CANDIDATE_SCORES),
                                     ("--stop-rule", self.stop_rule, STOP_RULES),
                                     ("--length-choice", self.length_choice, LENGTH_CHOICES)):
            if value not in choices:
                raise UsageError(f"unknown {flag} {value!r}; choose one of {', '.join(choices)}")
        if self.temperature <= 0:
            raise UsageError(f"--temperature must be > 0, got {self.temperature}")
        return self


# --length-choice: "mean" (the default) takes the rounded mean of the length distribution first, then the most likely
# lengths after it; "mode" takes the --iter-decode-with-beam most likely lengths.
LENGTH_CHOICES = ("mode", "mean")

# --stop-rule: "input" (PaDIR's, the default) ends a candidate when the next pass's input would equal this pass's;
# "prediction" when a pass predicts what the pass before it did, which can end a linear schedule while it still
# re-masks (on the ablation's base model, 5 passes: 3.71 against 3.80 BLEU, docs/decoding.md). With --rejecter
# confidence a candidate also ends once nothing is left open.
STOP_RULES = ("input", "prediction")


class Vocabulary(NamedTuple):
    """The ids refinement needs to know about."""

    pad: int
    eos: int
    mask: int
    random_low: int  # random initial tokens are drawn from [random_low, random_high)
    random_high: int
    never_predicted: List[int]  # pad, bos, eos, <mask>, <length>


def open_positions(tokens: torch.Tensor, initial: torch.Tensor, vocab: Vocabulary) -> torch.Tensor:
    """N x T bool: the words of ``tokens`` that still hold their initial token (all of them before the first pass)."""
    return tokens.eq(initial) & tokens.ne(vocab.pad) & tokens.ne(vocab.eos)


def length_candidates(length_log_probs: torch.Tensor, k: int, max_length, choice: str) -> torch.Tensor:
    """B x K lengths to decode (see LENGTH_CHOICES); ``max_length`` as in ``top_lengths``."""
    if choice == "mode":
        return top_lengths(length_log_probs, k, max_length)
    mean = expected_lengths(length_log_probs, max_length)[:, None]  # B x 1
    return torch.cat([mean, top_lengths(length_log_probs, k - 1, max_length)], 1) if k > 1 else mean


def candidate_lengths(top: torch.Tensor, offsets: int, restarts: int, max_length) -> torch.Tensor:
    """PaDIR's length beam: each predicted length (top: B x K) shifted by every offset in -(offsets // 2) ...
    +(offsets // 2), each repeated ``restarts`` times. Returns B x (K x offsets x restarts), per sentence length-major,
    then offset, then restart; clamped to [MIN_LENGTH, max_length] (an int or a B tensor, as in ``top_lengths``),
    so near a bound, or where two predicted lengths are close, some candidates share a length."""
    half = offsets // 2
    shifts = torch.arange(-half, half + 1, device=top.device)  # O
    lengths = (top[:, :, None] + shifts).reshape(top.size(0), -1)  # B x KO
    upper = torch.as_tensor(max_length, device=top.device).clamp(min=MIN_LENGTH).reshape(-1, 1)  # B|1 x 1
    lengths = torch.minimum(lengths.clamp(min=MIN_LENGTH), upper)
    return lengths.repeat_interleave(restarts, dim=1)  # B x KOR


def length_groups(lengths: torch.Tensor, size: int) -> List[torch.Tensor]:
    """Indices into LENGTHS (N) in groups of at most SIZE candidates, shortest first: each group is refined on a
    canvas as wide as its own longest candidate rather than the batch's. One group of all where N <= SIZE or SIZE
    is 0."""
    if size == 0 or lengths.numel() <= size:
        return [torch.arange(lengths.numel(), device=lengths.device)]
    return list(lengths.argsort(stable=True).split(size))


def initial_tokens(lengths: torch.Tensor, vocab: Vocabulary, init: str) -> torch.Tensor:
    """N x T canvas: <mask> or uniformly random words, EOS at position length - 1, padding after."""
    width = int(lengths.max())
    positions = torch.arange(width, device=lengths.device)[None, :]  # 1 x T
    words = positions < (lengths[:, None] - 1)  # N x T
    if init == "random":
        fill = torch.randint(vocab.random_low, vocab.random_high, (lengths.size(0), width), device=lengths.device)
    else:
        fill = torch.full((lengths.size(0), width), vocab.mask, device=lengths.device)
    tokens = torch.where(words, fill, torch.full_like(fill, vocab.pad))
    return tokens.scatter(1, lengths[:, None] - 1, vocab.eos)


def choose(log_probs: torch.Tensor, vocab: Vocabulary, options: RefinementOptions) -> torch.Tensor:
    """N x T tokens, one per position (argmax or sampled) among the predictable ones of log_probs (N x T x V,
    normalised over the whole vocabulary)."""
    scores = predictable(log_probs, vocab.never_predicted)
    if options.sampling:
        scores = scores / options.temperature
        if options.top_k > 0:
            k = min(options.top_k, scores.size(-1))  # --sampling-topk above the vocabulary: all of it
            threshold = scores.topk(k, dim=-1).values[..., -1:]  # N x T x 1
            scores = scores.masked_fill(scores < threshold, float("-inf"))
        flat = torch.multinomial(F.softmax(scores.view(-1, scores.size(-1)), -1), 1)  # NT x 1
        tokens = flat.view(scores.shape[:-1])
    else:
        tokens = scores.argmax(-1)  # N x T
    return tokens


def refine_step(
    log_probs: torch.Tensor,
    tokens: torch.Tensor,
    decoder_input: torch.Tensor,
    initial: torch.Tensor,
    step: int,
    max_step: int,
    vocab: Vocabulary,
    rejection: Rejection,
    summed_log_probs: Optional[torch.Tensor] = None,
    previous_log_probs: Optional[torch.Tensor] = None,
):
    """One pass's bookkeeping after the decoder ran on ``decoder_input`` (N x T) and ``tokens`` (N x T) were
    chosen from its ``log_probs`` (N x T x V); ``step`` counts passes from 0, of at most ``max_step`` + 1.
    ``previous_log_probs`` (N x T): the log-probabilities the previous pass returned, which the words kept under
    ``rejection.repredict`` "open" carry on (needed from the second pass on).

    Returns (predicted, token_log_probs, next_input): the filled prediction (EOS and padding kept from the
    input), the model's log-probability of each of its tokens, and the next pass's input.
    Shared by generation and unrolled training.
    """
    editable = decoder_input.ne(vocab.pad) & decoder_input.ne(vocab.eos)  # N x T
    opened = open_positions(decoder_input, initial, vocab)  # N x T
    repredicted = editable if rejection.repredict == "all" else opened  # N x T
    predicted = torch.where(repredicted, tokens, decoder_input)
    token_log_probs = log_probs.gather(-1, predicted.unsqueeze(-1)).squeeze(-1)  # N x T
    if rejection.repredict == "open" and step > 0:  # a kept word keeps the score it was predicted with
        token_log_probs = torch.where(editable & ~opened, previous_log_probs, token_log_probs)
    confidence = token_log_probs  # N x T, what the rejecter ranks
    if rejection.stutter_remask == "first":
        copies = less_confident_copies(predicted, token_log_probs, editable) & repredicted  # N x T
        if bool(copies.any()):  # each less confident copy of a repeat takes its next best word, re-masked first
            predicted = next_best(log_probs, predicted, copies, vocab.never_predicted)
            swapped = log_probs.gather(-1, predicted.unsqueeze(-1)).squeeze(-1)  # N x T
            token_log_probs = torch.where(copies, swapped, token_log_probs)
            confidence = confidence.masked_fill(copies, float("-inf"))
    rejected = reject(rejection.rejecter, confidence, editable, step, max_step, opened,
                      k=rejection.reject_k, fraction=rejection.reject_fraction, threshold=rejection.reject_threshold)
    if rejection.stutter_remask == "on":
        rejected = rejected | stutter(predicted, editable)
    next_input = replace(
        rejection.replacement, predicted, rejected, decoder_input, initial, summed_log_probs, vocab.never_predicted
    )
    return predicted, token_log_probs, next_input


def mean_log_probs(log_probs: List[torch.Tensor]) -> torch.Tensor:
    """Ensemble average in probability space of the models' log-probabilities, returned as log-probabilities."""
    if len(log_probs) == 1:
        return log_probs[0]
    return torch.logsumexp(torch.stack(log_probs), 0) - torch.log(torch.tensor(float(len(log_probs))))


def ensemble_log_probs(models, encoder_outs, decoder_input: torch.Tensor) -> torch.Tensor:
    """The models' average distribution over N x T x V, as log-probabilities."""
    return mean_log_probs([F.log_softmax(m.decode(decoder_input, e).float(), -1) for m, e in zip(models, encoder_outs)])


def split_reranker(models, reranker: bool):
    """(the GMLMs, the reranker or None): with --iter-decode-with-external-reranker the last model of --path
    is an autoregressive encoder-decoder (t5_ar) and every other one a GMLM, as fairseq's NAT generator has it."""
    def is_gmlm(model):
        return hasattr(model, "length_logits")

    gmlms, last = (models[:-1], models[-1]) if reranker else (models, None)
    if reranker and (not gmlms or is_gmlm(last)):
        raise UsageError("--iter-decode-with-external-reranker: pass the GMLM(s) first and an autoregressive model "
                         "(t5_ar) last in --path, e.g. --path gmlm.pt:ar.pt")
    for model in gmlms:
        if not is_gmlm(model):
            raise UsageError(f"--path holds an autoregressive model ({type(model).__name__}) among the GMLMs: to "
                             f"rescore the GMLM's candidates with it, put it last and add "
                             f"--iter-decode-with-external-reranker")
    return gmlms, last


def compact(tokens: torch.Tensor, keep: torch.Tensor, pad: int) -> torch.Tensor:
    """N x T: each row's kept tokens (keep: N x T bool) moved to its front in order, padding after."""
    order = (~keep).long().argsort(dim=1, stable=True)  # kept positions first
    return tokens.gather(1, order).masked_fill(~keep.gather(1, order), pad)


def reranker_scores(reranker, src_tokens, src_lengths, sentence: torch.Tensor, candidates: torch.Tensor,
                    vocab: Vocabulary) -> torch.Tensor:
    """N: the mean log-probability per token (words and EOS) of each candidate (N x T, compact, EOS-terminated)
    under the autoregressive RERANKER, teacher-forced: one encoder pass per sentence (B), one decoder pass for all
    candidates; ``sentence`` (N) maps each candidate to its row of src_tokens. The GMLM-only symbols are masked
    out of the distribution."""
    encoder_out = reranker.encoder(src_tokens, src_lengths=src_lengths)
    encoder_out = reranker.encoder.reorder_encoder_out(encoder_out, sentence)
    logits, _ = reranker.decoder(shifted_right(candidates, vocab.eos), encoder_out=encoder_out)  # N x T x V
    unused = [index for index in vocab.never_predicted if index != vocab.eos]
    log_probs = F.log_softmax(predictable(logits.float(), unused), -1)
    token_log_probs = log_probs.gather(-1, candidates.unsqueeze(-1)).squeeze(-1)  # N x T
    real = candidates.ne(vocab.pad)
    return token_log_probs.masked_fill(~real, 0.0).sum(1) / real.sum(1)


def set_mode(model, training: bool) -> None:
    """model.train(TRAINING) where some module differs. The mode rarely changes between batches, and setting it
    writes every module's flag: 0.41 ms a call for gmlm_t5_mini (144 modules) against 0.13 ms for this check."""
    if any(module.training != training for module in model.modules()):
        model.train(training)


def in_inference_mode(function):
    """Run FUNCTION under ``torch.inference_mode``, which spends less on each tensor operation than ``no_grad`` (the
    GMLM at 5 passes, batch 1: 5-9% less time a sentence, outputs identical; docs/decoding.md, "Inference mode"),
    and return its result with every tensor cloned outside it (ordinary tensors), so callers may change them in place
    (fairseq-generate divides positional_scores in place, which an inference tensor refuses) or use them with
    autograd."""
    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        with torch.inference_mode():
            result = function(*args, **kwargs)
        return utils.apply_to_sample(torch.clone, result)

    return wrapped


class GMLMGenerator:
    """Implements fairseq's generator interface: ``generate(models, sample)`` -> per sentence a list with
    one hypothesis dict (tokens ending in EOS, score, positional_scores, steps, predicted_length, history,
    alignment)."""

    def __init__(self, vocab: Vocabulary, options: RefinementOptions):
        self.vocab = vocab
        self.options = options.check()
        self.eos = vocab.eos
        self.symbols_to_strip_from_output = {vocab.eos}

    @in_inference_mode
    def generate(self, models, sample, prefix_tokens=None, constraints=None, **unused):
        if prefix_tokens is not None or constraints is not None:
            raise UsageError("translation_gmlm decodes all positions in parallel: --prefix-size and --constraints "
                             "are not supported")
        options, vocab = self.options, self.vocab
        models, reranker = split_reranker(models, options.reranker)
        for model in models:
            set_mode(model, training=options.retain_dropout)
        if reranker is not None:
            set_mode(reranker, training=False)

        src_tokens, src_lengths = sample["net_input"]["src_tokens"], sample["net_input"]["src_lengths"]
        encoder_outs = [m.project_memory(m.encode(src_tokens, src_lengths)) for m in models]  # once for all passes

        # Candidates: top-k lengths x offsets x restarts per sentence, laid out sentence-major.
        length_log_probs = mean_log_probs(
            [F.log_softmax(m.length_logits(e).float(), -1) for m, e in zip(models, encoder_outs)]
        )  # B x classes
        source_length = src_tokens.ne(vocab.pad).sum(1)  # B, with EOS
        max_length = (options.max_len_a * source_length + options.max_len_b).long()  # B, target length with EOS
        max_length = max_length.clamp(max=min(m.max_target_positions for m in models))
        top = length_candidates(length_log_probs, options.length_candidates, max_length, options.length_choice)  # B x K
        lengths = candidate_lengths(top, options.length_offsets, options.restarts, max_length)  # B x KOR
        per_sentence = lengths.size(1)
        lengths = lengths.reshape(-1)  # N
        sentence = torch.arange(src_tokens.size(0), device=src_tokens.device).repeat_interleave(per_sentence)

        initial = initial_tokens(lengths, vocab, options.decoder_init)  # N x T
        predicted, token_log_probs, passes, history = self.refine_by_length(models, encoder_outs, sentence, initial,
                                                                            lengths)

        real = predicted.ne(vocab.pad)  # words and EOS
        if options.stutter_remask == "on":  # PaDIR drops stutters after the last pass too
            real = real & ~stutter(predicted, predicted.ne(vocab.pad) & predicted.ne(vocab.eos))
        length_log_prob = length_log_probs[sentence, lengths]  # N
        scores = candidate_scores(token_log_probs, real, length_log_prob, options.candidate_score,
                                  options.brevity_penalty)  # N
        if reranker is not None:  # the hypothesis keeps the GMLM's scores; the reranker only chooses
            candidates = compact(predicted, real, vocab.pad)  # N x T
            choice = reranker_scores(reranker, src_tokens, src_lengths, sentence, candidates, vocab)
        else:
            choice = scores
        best = best_candidates(choice, per_sentence)  # B

        hypotheses = []
        for n in best.tolist():
            keep = real[n]
            hypotheses.append([{
                "tokens": predicted[n][keep],
                "score": scores[n],
                "positional_scores": token_log_probs[n][keep],
                "steps": int(passes[n]),
                "predicted_length": int(lengths[n]),  # the canvas the length head chose, with EOS
                "alignment": None,
                "attention": None,
                "history": [
                    {"tokens": h[h.ne(vocab.pad)], "score": 0.0, "positional_scores": s[h.ne(vocab.pad)],
                     "attention": None, "alignment": None}
                    for h, s in history[n]
                ] if options.retain_history else None,
            }])
        return hypotheses

    def refine_by_length(self, models, encoder_outs, sentence: torch.Tensor, initial: torch.Tensor,
                         lengths: torch.Tensor):
        """``refine`` on each group of ``length_groups`` (--length-group-size), on a canvas as wide as the group's
        longest candidate; ``sentence`` (N) maps the candidates to ENCODER_OUTS' rows. At batch 128 the batch's
        canvas is 1.5 to 1.8 times the candidates' lengths on the benchmark's test sets: docs/decoding.md, "Candidates
        refined in groups by length". Returns what ``refine`` does, on INITIAL's canvas (N x T), in candidate order."""
        groups = length_groups(lengths, self.options.length_group_size)
        if len(groups) == 1:
            return self.refine(models, [e.index_select(sentence) for e in encoder_outs], initial)
        predicted, token_log_probs = initial.clone(), torch.zeros(initial.shape, device=initial.device)  # N x T
        passes = torch.zeros(initial.size(0), dtype=torch.long, device=initial.device)  # N
        history = [None] * initial.size(0) if self.options.retain_history else None
        for group in groups:  # G candidates
            width = int(lengths[group].max())
            group_predicted, group_log_probs, group_passes, group_history = self.refine(
                models, [e.index_select(sentence[group]) for e in encoder_outs], initial[group, :width])  # G x width
            predicted[group, :width], token_log_probs[group, :width] = group_predicted, group_log_probs
            passes[group] = group_passes
            if history is not None:
                for row, candidate in enumerate(group.tolist()):
                    history[candidate] = group_history[row]
        return predicted, token_log_probs, passes, history

    def refine(self, models, encoder_outs, initial: torch.Tensor):
        """Run up to max_iter + 1 passes; finished candidates leave the batch.

        Returns predicted (N x T), token_log_probs (N x T), passes (N) and per-candidate history lists of
        (predicted, token_log_probs) per pass.
        """
        options, vocab, rejection = self.options, self.vocab, self.options.rejection
        decoder_input = initial.clone()
        predicted = initial.clone()
        token_log_probs = torch.zeros(initial.shape, device=initial.device)
        passes = torch.zeros(initial.size(0), dtype=torch.long, device=initial.device)
        summed = None
        history = [[] for _ in range(initial.size(0))] if options.retain_history else None
        active = torch.arange(initial.size(0), device=initial.device)
        encoder_active = encoder_outs  # the encoder outputs of the active candidates

        for step in range(options.max_iter + 1):
            current, current_initial = decoder_input[active], initial[active]  # n x T each
            log_probs = ensemble_log_probs(models, encoder_active, current)  # n x T x V
            if options.replacement == "logits-sum":
                summed = log_probs if summed is None else summed + log_probs
            new_predicted, new_log_probs, next_input = refine_step(
                log_probs, choose(log_probs, vocab, options), current, current_initial, step, options.max_iter, vocab,
                rejection, summed, token_log_probs[active] if options.repredict == "open" else None,
            )
            finished = self.finished(step, new_predicted, predicted[active], current, next_input, current_initial)  # n
            predicted[active], token_log_probs[active], decoder_input[active] = new_predicted, new_log_probs, next_input
            passes[active] += 1
            if history is not None:
                for row, n in enumerate(active.tolist()):
                    history[n].append((new_predicted[row], new_log_probs[row]))
            if options.early_stop and bool(finished.any()):
                if bool(finished.all()):
                    break
                still = (~finished).nonzero().squeeze(1)  # rows of the active set that go on
                active = active[still]
                encoder_active = [e.index_select(still) for e in encoder_active]
                summed = summed[still] if summed is not None else None
        return predicted, token_log_probs, passes, history

    def finished(self, step: int, predicted, previous_predicted, decoder_input, next_input, initial) -> torch.Tensor:
        """n bool: the active candidates that stop after pass ``step`` under --stop-rule (see STOP_RULES)."""
        options = self.options
        if options.stop_rule == "input":
            done = (next_input == decoder_input).all(1)
        else:
            done = (predicted == previous_predicted).all(1) & (step > 0)
        if options.rejecter == "confidence":
            done = done | ~open_positions(next_input, initial, self.vocab).any(1)
        return done
