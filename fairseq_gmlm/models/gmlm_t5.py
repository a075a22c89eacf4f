"""``gmlm_t5``: a T5 encoder-decoder trained as a generative masked language model.

Li et al., "Promises and Pitfalls of Generative Masked Language Modeling: Theoretical Framework and Practical
Guidelines" (ICML 2024; PaDIR). The decoder sees the whole (partly corrupted) target at once: its
self-attention has no causal mask and its relative position bias is bidirectional. The target length comes
from a ``<length>`` token prepended to the source (see ``length_head.py``).

Shapes: B batch, S source length (without <length>), T target length, C model dim, V vocabulary.
"""

import logging
from dataclasses import dataclass, field
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from fairseq import utils
from fairseq.dataclass import ChoiceEnum
from fairseq.models import BaseFairseqModel, register_model
from torch import nn

from fairseq_gmlm.errors import UsageError
from fairseq_gmlm.models.length_head import LengthHead
from fairseq_gmlm.models.t5_common import (
    LENGTH_SYMBOL,
    MASK_SYMBOL,
    FromPretrained,
    T5Config,
    build_embeddings,
    build_output_head,
    build_stack,
    init_t5_model,
    output_logits,
    register_sizes,
    shifted_right,
)
from fairseq_gmlm.models.t5_layers import attention_bias_from_padding, causal_bias
from fairseq_gmlm.models.warm_start import WARM_DECODER_BIASES
from fairseq_gmlm.precision import prepare_generation_precision

logger = logging.getLogger(__name__)

POSITION_INPUTS = ("none", "learned", "mask-range", "positional-attention")
POSITION_INIT_STD = 0.1  # learned absolute positions added to token embeddings (std 1)


@dataclass
class GMLMT5Config(T5Config):
    position_input: ChoiceEnum(list(POSITION_INPUTS)) = field(
        default="none",
        metadata={"help": "how decoder inputs learn where they are, beyond the relative biases: 'learned' absolute "
                          "position embeddings added to every input, 'mask-range' (<mask> at position i is embedded "
                          "as its own <mask_i>), 'positional-attention' (an attention block per decoder layer "
                          "whose queries and keys are positions), or 'none'"},
    )
    encoder_positions: bool = field(
        default=False, metadata={"help": "also add learned absolute position embeddings to the encoder input"}
    )
    cross_attention_skips_length: bool = field(
        default=False,
        metadata={"help": "the decoder's cross-attention leaves out the <length> encoder state, as PaDIR does "
                          "(encoded[:, 1:]); by default it attends to it like to any source token"},
    )
    shift_decoder_input: bool = field(
        default=False,
        metadata={"help": "the decoder's input at position i is the (corrupted) target word i-1, after a start "
                          "symbol (EOS), as an autoregressive decoder's is: a model warm-started by --init-from-ar "
                          "then predicts each word where its AR decoder learned to, from the word before it; the "
                          "target's length is the input's. Beyond PaDIR; off: position i holds word i"},
    )
    pred_length_offset: bool = field(
        default=False,
        metadata={"help": "the length head predicts the target length minus the source length (fairseq's NAT flag "
                          "of this name) rather than the length itself (PaDIR's): the source length enters exactly, "
                          "where the <length> state knows it only through bucketed relative positions"},
    )
    warm_decoder_bias: ChoiceEnum(list(WARM_DECODER_BIASES)) = field(
        default="mirror",
        metadata={"help": "with --init-from-ar, the decoder's relative-bias table: the AR model's causal one laid out "
                          "bidirectionally, each right bucket mirroring its left one (mirror), or this model's own "
                          "initialisation (fresh; with --relative-attention-init diverse each head prefers its own "
                          "offset, to the left or to the right)"},
    )
    init_from_ar: Optional[str] = field(
        default=None,
        metadata={"help": "start training from this t5_ar checkpoint of the same shape (embedding, encoder and "
                          "decoder blocks, output projection; the decoder's relative biases as "
                          "--warm-decoder-bias says); fairseq-train only, ignored when loading a trained model"},
    )


class EncoderOut(NamedTuple):
    out: torch.Tensor  # B x (1 + S) x C, position 0 is <length>
    padding_mask: torch.Tensor  # B x (1 + S) bool, True at padding
    # Per decoder block, the cross-attention keys and values of ``out`` (B x H x (1 + S) x D each), projected
    # once for all refinement passes by GMLMT5Model.project_memory; None: projected in every decode().
    memory: Optional[Tuple[Tuple[torch.Tensor, torch.Tensor], ...]] = None

    def index_select(self, order: torch.Tensor) -> "EncoderOut":
        memory = None if self.memory is None else tuple(
            (keys.index_select(0, order), values.index_select(0, order)) for keys, values in self.memory)
        return EncoderOut(self.out.index_select(0, order), self.padding_mask.index_select(0, order), memory)


class GMLMOutput(NamedTuple):
    logits: torch.Tensor  # B x T x V, or P x V for the logit_positions asked for
    length_logits: torch.Tensor  # B x (max_target_positions + 1)
    encoder_out: EncoderOut


def symbol_index(dictionary, symbol: str) -> int:
    index = dictionary.index(symbol)
    if index == dictionary.unk() and symbol != dictionary.unk_word:
        raise UsageError(
            f"the dictionary has no {symbol!r} symbol; gmlm_t5 is built by the translation_gmlm task, which adds "
            f"it (use --task translation_gmlm, also at generate time)"
        )
    return index


@register_model("gmlm_t5", dataclass=GMLMT5Config)
class GMLMT5Model(FromPretrained, BaseFairseqModel):
    def __init__(self, cfg: GMLMT5Config, dictionary, source_dictionary=None):
        """DICTIONARY: the target's; SOURCE_DICTIONARY: the source's when the data has one per side (then the
        source gets its own embedding, see ``build_embeddings``), else None."""
        super().__init__()
        self.cfg = cfg
        self.dictionary = dictionary
        source_dictionary = dictionary if source_dictionary is None else source_dictionary
        self.pad, self.eos, self.bos = dictionary.pad(), dictionary.eos(), dictionary.bos()
        self.source_pad = source_dictionary.pad()
        self.mask_idx = symbol_index(dictionary, MASK_SYMBOL)
        self.length_idx = symbol_index(source_dictionary, LENGTH_SYMBOL)  # prepended to the source
        self.max_source_positions = cfg.max_source_positions
        self.max_target_positions = cfg.max_target_positions
        self.d_model = cfg.d_model  # read every pass: an attribute of a loaded model's DictConfig costs 10 us

        source_embedding, self.embed_tokens = build_embeddings(cfg, dictionary, source_dictionary)
        # only with a dictionary per side; checkpoints of one shared embedding keep their parameter names
        self.source_embed_tokens = None if source_embedding is self.embed_tokens else source_embedding
        # (checkpoints saved before these options existed lack them)
        self.position_input = str(getattr(cfg, "position_input", "none"))
        self.cross_attention_skips_length = bool(getattr(cfg, "cross_attention_skips_length", False))
        self.shift_decoder_input = bool(getattr(cfg, "shift_decoder_input", False))
        self.encoder = build_stack(cfg, cfg.encoder_layers, bidirectional=True, cross_attention=False)
        self.decoder = build_stack(cfg, cfg.decoder_layers, bidirectional=True, cross_attention=True,
                                   positional_attention=self.position_input == "positional-attention")
        # learned: added to every decoder input; mask-range: the <mask_i> rows; positional-attention: the
        # attention's queries and keys. One row per target position.
        self.decoder_positions = (
            None if self.position_input == "none" else nn.Embedding(cfg.max_target_positions, cfg.d_model)
        )
        # one more row than source positions: <length> is prepended
        self.encoder_positions = (
            nn.Embedding(cfg.max_source_positions + 1, cfg.d_model) if getattr(cfg, "encoder_positions", False) else None
        )
        self.length_head = LengthHead(
            cfg.d_model, cfg.max_target_positions,
            cfg.max_source_positions if getattr(cfg, "pred_length_offset", False) else None,
        )
        self.lm_head = build_output_head(cfg, len(dictionary))

        init_t5_model(self, cfg, [self.embed_tokens, source_embedding], self.lm_head)
        if self.decoder_positions is not None:
            # mask-range rows stand in for the <mask> row (std 1 like every token row), positional attention
            # normalises its positions; added positions start small, so a warm start is barely disturbed
            std = POSITION_INIT_STD if self.position_input == "learned" else 1.0
            nn.init.normal_(self.decoder_positions.weight, std=std)
        if self.encoder_positions is not None:
            nn.init.normal_(self.encoder_positions.weight, std=POSITION_INIT_STD)

    @classmethod
    def build_model(cls, cfg: GMLMT5Config, task):
        return cls(cfg, task.target_dictionary, task.source_dictionary)

    def max_positions(self):
        return (self.max_source_positions, self.max_target_positions)

    @property
    def encoder_embed_tokens(self) -> nn.Embedding:
        """The source side's embedding: the shared one unless the data has a dictionary per side."""
        return self.embed_tokens if self.source_embed_tokens is None else self.source_embed_tokens

    # ---- the network ------------------------------------------------------------------------------------

    def encode(self, src_tokens: torch.Tensor, src_lengths: Optional[torch.Tensor] = None) -> EncoderOut:
        """src_tokens: B x S, left- or right-padded, ending in EOS."""
        # Relative positions are index differences, so padding must not sit between <length> and the words.
        src_tokens = utils.convert_padding_direction(src_tokens, self.source_pad, left_to_right=True)
        tokens = torch.cat([src_tokens.new_full((src_tokens.size(0), 1), self.length_idx), src_tokens], 1)
        padding_mask = tokens.eq(self.source_pad)  # B x (1 + S)
        x = self.encoder_embed_tokens(tokens)  # B x (1 + S) x C
        length = tokens.size(1)
        if self.encoder_positions is not None:
            x = x + self.encoder_positions.weight[:length]  # (1 + S) x C, broadcast over B
        bias = self.encoder.relative_position(length, length) + attention_bias_from_padding(padding_mask, x.dtype)
        return EncoderOut(self.encoder(x, bias), padding_mask)

    def length_logits(self, encoder_out: EncoderOut) -> torch.Tensor:
        """B x (max_target_positions + 1): class L for a target of L tokens with EOS."""
        source_lengths = None
        if self.length_head.predicts_offset:  # B tokens with EOS, without <length>
            source_lengths = (~encoder_out.padding_mask).sum(1) - 1
        return self.length_head(encoder_out.out[:, 0], source_lengths)

    def decode(self, prev_output_tokens: torch.Tensor, encoder_out: EncoderOut,
               logit_positions: Optional[torch.Tensor] = None, causal: bool = False) -> torch.Tensor:
        """prev_output_tokens: B x T right-padded canvas (words, <mask>s, EOS), position i for target word i (with
        --shift-decoder-input the decoder reads it shifted right by one: EOS, then the canvas but its last token).
        Returns B x T x V logits, position i's for target word i, or with ``logit_positions`` (B x T bool) P x V:
        those of its P True positions only, in row-major order (training scores some positions, and the output
        projection and softmax over V are a large share of a step's work).

        ``causal``: decode as the ``t5_ar`` the model can be warm-started from does under teacher forcing, for
        gmlm_loss's --ar-loss-weight: the canvas (the clean target) is read shifted right by one and position i
        attends to positions up to i only, so it predicts word i from the words before it."""
        tokens = prev_output_tokens
        if self.shift_decoder_input or causal:
            tokens = shifted_right(prev_output_tokens, self.eos, self.pad)  # B x T
        x = self.embed_decoder_input(tokens)  # B x T x C
        length = prev_output_tokens.size(1)
        padding_bias = attention_bias_from_padding(prev_output_tokens.eq(self.pad), x.dtype)  # B x 1 x 1 x T
        if causal:  # every attention over target positions (positional attention too) sees the left only
            padding_bias = padding_bias + causal_bias(length, length, x.device, x.dtype)  # B x 1 x T x T
        self_bias = self.decoder.relative_position(length, length) + padding_bias  # B x H x T x T
        memory_bias = attention_bias_from_padding(self.memory_padding(encoder_out), x.dtype)  # B x 1 x 1 x (1 + S)
        positions = None
        if self.position_input == "positional-attention":
            positions = self.decoder_positions.weight[None, :length]  # 1 x T x C
        hidden = self.decoder(x, self_bias, encoder_out.out, memory_bias, memory_keys_values=encoder_out.memory,
                              positions=positions, padding_bias=padding_bias)  # B x T x C
        if logit_positions is not None:
            hidden = hidden[logit_positions]  # P x C
        return self.output_projection(hidden)

    def memory_padding(self, encoder_out: EncoderOut) -> torch.Tensor:
        """B x (1 + S) bool: the encoder positions cross-attention ignores (padding, and <length> with
        --cross-attention-skips-length)."""
        if not self.cross_attention_skips_length:
            return encoder_out.padding_mask
        return encoder_out.padding_mask.index_fill(1, encoder_out.padding_mask.new_zeros(1, dtype=torch.long), True)

    def embed_decoder_input(self, tokens: torch.Tensor) -> torch.Tensor:
        """B x T token ids -> B x T x C, with the --position-input that adds to the embeddings."""
        x = self.embed_tokens(tokens)  # B x T x C
        if self.position_input == "learned":
            x = x + self.decoder_positions.weight[: tokens.size(1)]  # T x C, broadcast over B
        elif self.position_input == "mask-range":
            mask_rows = self.decoder_positions.weight[: tokens.size(1)].expand_as(x)  # <mask_i> at position i
            x = torch.where(tokens.eq(self.mask_idx).unsqueeze(-1), mask_rows, x)
        return x

    def project_memory(self, encoder_out: EncoderOut) -> EncoderOut:
        """ENCODER_OUT with every decoder block's cross-attention keys and values computed, for decoding it
        several times (refinement passes) without projecting them again each time."""
        return encoder_out._replace(memory=self.decoder.memory_keys_values(encoder_out.out))

    def output_projection(self, hidden: torch.Tensor) -> torch.Tensor:
        return output_logits(hidden, self.embed_tokens, self.lm_head, self.d_model)  # B x T x V

    def forward(self, src_tokens, src_lengths, prev_output_tokens, logit_positions=None, **unused) -> GMLMOutput:
        """``logit_positions``: as in ``decode`` (then the output's logits are P x V)."""
        encoder_out = self.encode(src_tokens, src_lengths)
        logits = self.decode(prev_output_tokens, encoder_out, logit_positions)
        return GMLMOutput(logits, self.length_logits(encoder_out), encoder_out)

    def prepare_for_inference_(self, cfg):
        """Called by fairseq-generate and fairseq-interactive with the whole config: --bf16/--amp apply here."""
        super().prepare_for_inference_(cfg)
        prepare_generation_precision(self, cfg.common)

    def get_normalized_probs(self, net_output, log_probs: bool, sample=None):
        logits = net_output.logits if isinstance(net_output, GMLMOutput) else net_output[0]
        return F.log_softmax(logits.float(), -1) if log_probs else F.softmax(logits.float(), -1)


ARCHITECTURES = register_sizes("gmlm_t5")  # gmlm_t5_tiny ... gmlm_t5_large
