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
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.models import BaseFairseqModel, register_model, register_model_architecture
from omegaconf import II
from torch import nn

from fairseq_gmlm.errors import UsageError
from fairseq_gmlm.models.length_head import LengthHead
from fairseq_gmlm.models.t5_layers import Stack, attention_bias_from_padding, init_t5_weights
from fairseq_gmlm.precision import prepare_generation_precision

logger = logging.getLogger(__name__)

MASK_SYMBOL = "<mask>"
LENGTH_SYMBOL = "<length>"
POSITION_INPUTS = ("none", "learned", "mask-range", "positional-attention")
POSITION_INIT_STD = 0.1  # learned absolute positions added to token embeddings (std 1)


@dataclass
class GMLMT5Config(FairseqDataclass):
    d_model: int = field(default=512, metadata={"help": "model (embedding) dimension"})
    num_heads: int = field(default=8, metadata={"help": "attention heads"})
    d_kv: int = field(default=64, metadata={"help": "dimension of each head's keys and values"})
    d_ff: int = field(default=2048, metadata={"help": "feed-forward inner dimension"})
    encoder_layers: int = field(default=6, metadata={"help": "encoder blocks"})
    decoder_layers: int = field(default=6, metadata={"help": "decoder blocks"})
    feed_forward: ChoiceEnum(["gated-gelu", "relu"]) = field(
        default="gated-gelu", metadata={"help": "T5 v1.1 gated-GELU or original T5 ReLU feed-forward"}
    )
    dropout: float = field(default=0.1, metadata={"help": "dropout after embeddings, sublayers and attention"})
    layer_norm_epsilon: float = field(default=1e-6, metadata={"help": "RMSNorm epsilon"})
    relative_attention_num_buckets: int = field(default=32, metadata={"help": "relative position buckets"})
    relative_attention_max_distance: int = field(default=128, metadata={"help": "largest distinguished offset"})
    relative_attention_init_std: float = field(
        default=2.0,
        metadata={"help": "std of the initial relative position biases when training from scratch (T5 uses "
                          "d_model^-0.5, which leaves a from-scratch NAT decoder nearly blind to positions)"},
    )
    tie_output_projection: bool = field(
        default=False, metadata={"help": "output projection = token embedding (scaled by d_model^-0.5)"}
    )
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
    init_from_ar: Optional[str] = field(
        default=None,
        metadata={"help": "start training from this t5_ar checkpoint of the same shape (embedding, encoder and "
                          "decoder blocks, output projection; the decoder's relative biases mapped to the "
                          "bidirectional layout); fairseq-train only, ignored when loading a trained model"},
    )
    max_source_positions: int = II("task.max_source_positions")
    max_target_positions: int = II("task.max_target_positions")


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
    logits: torch.Tensor  # B x T x V
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


def joint_dictionary(task, model_name: str):
    """The task's one dictionary; T5 models share one embedding between source and target."""
    if task.source_dictionary != task.target_dictionary:
        raise UsageError(
            f"{model_name} shares one embedding between source and target: binarise the data with "
            "fairseq-preprocess --joined-dictionary (or give the same --srcdict and --tgtdict)"
        )
    return task.target_dictionary


@register_model("gmlm_t5", dataclass=GMLMT5Config)
class GMLMT5Model(BaseFairseqModel):
    def __init__(self, cfg: GMLMT5Config, dictionary):
        super().__init__()
        self.cfg = cfg
        self.dictionary = dictionary
        self.pad, self.eos, self.bos = dictionary.pad(), dictionary.eos(), dictionary.bos()
        self.mask_idx = symbol_index(dictionary, MASK_SYMBOL)
        self.length_idx = symbol_index(dictionary, LENGTH_SYMBOL)
        self.max_source_positions = cfg.max_source_positions
        self.max_target_positions = cfg.max_target_positions

        self.embed_tokens = nn.Embedding(len(dictionary), cfg.d_model)
        # (checkpoints saved before these options existed lack them)
        self.position_input = str(getattr(cfg, "position_input", "none"))
        self.cross_attention_skips_length = bool(getattr(cfg, "cross_attention_skips_length", False))
        self.encoder = self.build_stack(cfg, cfg.encoder_layers, bidirectional=True, cross_attention=False)
        self.decoder = self.build_stack(cfg, cfg.decoder_layers, bidirectional=True, cross_attention=True,
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
        self.length_head = LengthHead(cfg.d_model, cfg.max_target_positions)
        self.lm_head = None if cfg.tie_output_projection else nn.Linear(cfg.d_model, len(dictionary), bias=False)

        nn.init.normal_(self.embed_tokens.weight, std=1.0)
        # (checkpoints saved before the option existed lack it; their weights replace the init anyway)
        init_t5_weights(self, cfg.d_model, relative_bias_std=getattr(cfg, "relative_attention_init_std", None))
        if self.lm_head is not None:
            nn.init.normal_(self.lm_head.weight, std=cfg.d_model**-0.5)
        if self.decoder_positions is not None:
            # mask-range rows stand in for the <mask> row (std 1 like every token row), positional attention
            # normalises its positions; added positions start small, so a warm start is barely disturbed
            std = POSITION_INIT_STD if self.position_input == "learned" else 1.0
            nn.init.normal_(self.decoder_positions.weight, std=std)
        if self.encoder_positions is not None:
            nn.init.normal_(self.encoder_positions.weight, std=POSITION_INIT_STD)

    @staticmethod
    def build_stack(cfg, num_layers: int, bidirectional: bool, cross_attention: bool,
                    positional_attention: bool = False) -> Stack:
        return Stack(
            num_layers, cfg.d_model, cfg.num_heads, cfg.d_kv, cfg.d_ff, str(cfg.feed_forward), cfg.dropout,
            cfg.layer_norm_epsilon, bidirectional, cross_attention,
            cfg.relative_attention_num_buckets, cfg.relative_attention_max_distance, positional_attention,
        )

    @classmethod
    def build_model(cls, cfg: GMLMT5Config, task):
        return cls(cfg, joint_dictionary(task, "gmlm_t5"))

    def max_positions(self):
        return (self.max_source_positions, self.max_target_positions)

    # ---- the network ------------------------------------------------------------------------------------

    def encode(self, src_tokens: torch.Tensor, src_lengths: Optional[torch.Tensor] = None) -> EncoderOut:
        """src_tokens: B x S, left- or right-padded, ending in EOS."""
        # Relative positions are index differences, so padding must not sit between <length> and the words.
        src_tokens = utils.convert_padding_direction(src_tokens, self.pad, left_to_right=True)
        tokens = torch.cat([src_tokens.new_full((src_tokens.size(0), 1), self.length_idx), src_tokens], 1)
        padding_mask = tokens.eq(self.pad)  # B x (1 + S)
        x = self.embed_tokens(tokens)  # B x (1 + S) x C
        length = tokens.size(1)
        if self.encoder_positions is not None:
            x = x + self.encoder_positions.weight[:length]  # (1 + S) x C, broadcast over B
        bias = self.encoder.relative_position(length, length) + attention_bias_from_padding(padding_mask, x.dtype)
        return EncoderOut(self.encoder(x, bias), padding_mask)

    def length_logits(self, encoder_out: EncoderOut) -> torch.Tensor:
        return self.length_head(encoder_out.out[:, 0])  # B x (max_target_positions + 1)

    def decode(self, prev_output_tokens: torch.Tensor, encoder_out: EncoderOut) -> torch.Tensor:
        """prev_output_tokens: B x T right-padded decoder input (words, <mask>s, EOS). Returns B x T x V logits."""
        x = self.embed_decoder_input(prev_output_tokens)  # B x T x C
        length = prev_output_tokens.size(1)
        padding_bias = attention_bias_from_padding(prev_output_tokens.eq(self.pad), x.dtype)  # B x 1 x 1 x T
        self_bias = self.decoder.relative_position(length, length) + padding_bias  # B x H x T x T
        memory_bias = attention_bias_from_padding(self.memory_padding(encoder_out), x.dtype)  # B x 1 x 1 x (1 + S)
        positions = None
        if self.position_input == "positional-attention":
            positions = self.decoder_positions.weight[None, :length]  # 1 x T x C
        hidden = self.decoder(x, self_bias, encoder_out.out, memory_bias, memory_keys_values=encoder_out.memory,
                              positions=positions, padding_bias=padding_bias)
        return self.output_projection(hidden)  # hidden: B x T x C

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
        if self.lm_head is None:
            # Tied embeddings have unit-scale rows, the hidden state is RMS-normalised: rescale as T5 does.
            return (hidden * self.cfg.d_model**-0.5) @ self.embed_tokens.weight.t()
        return self.lm_head(hidden)

    def forward(self, src_tokens, src_lengths, prev_output_tokens, **unused) -> GMLMOutput:
        encoder_out = self.encode(src_tokens, src_lengths)
        return GMLMOutput(self.decode(prev_output_tokens, encoder_out), self.length_logits(encoder_out), encoder_out)

    def prepare_for_inference_(self, cfg):
        """Called by fairseq-generate and fairseq-interactive with the whole config: --bf16/--amp apply here."""
        super().prepare_for_inference_(cfg)
        prepare_generation_precision(self, cfg.common)

    def get_normalized_probs(self, net_output, log_probs: bool, sample=None):
        logits = net_output.logits if isinstance(net_output, GMLMOutput) else net_output[0]
        return F.log_softmax(logits.float(), -1) if log_probs else F.softmax(logits.float(), -1)


def _preset(**values):
    """An architecture that sets only what differs from GMLMT5Config's defaults (T5-small's shape)."""

    def apply(args):
        for name, value in values.items():
            setattr(args, name, getattr(args, name, value))

    return apply


ARCHITECTURES = {
    "gmlm_t5_tiny": dict(d_model=64, num_heads=4, d_kv=16, d_ff=128, encoder_layers=2, decoder_layers=2),
    "gmlm_t5_mini": dict(d_model=128, num_heads=4, d_kv=32, d_ff=512, encoder_layers=3, decoder_layers=3),
    "gmlm_t5_small": dict(),
    "gmlm_t5_base": dict(d_model=768, num_heads=12, d_ff=3072, encoder_layers=12, decoder_layers=12),
    "gmlm_t5_large": dict(d_model=1024, num_heads=16, d_ff=4096, encoder_layers=24, decoder_layers=24),
}
for _name, _values in ARCHITECTURES.items():
    register_model_architecture("gmlm_t5", _name)(_preset(**_values))
