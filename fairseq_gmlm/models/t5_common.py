"""What ``gmlm_t5`` and ``t5_ar`` share: configuration, size presets, stack assembly, token embeddings (one
shared, or one per dictionary), output projection and weight initialisation (Raffel et al., JMLR 2020;
PaDIR, Li et al., ICML 2024).

The two models differ in their decoders (parallel and bidirectional, or causal with a key/value cache) and
in what surrounds them; everything here is built the same way for both, so a change to it changes both.

Shapes: B batch, L length, C model dim, V vocabulary.
"""

from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import torch
from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.models import register_model_architecture
from omegaconf import II
from torch import nn

from fairseq_gmlm.models.t5_layers import Stack, init_t5_weights


# translation_gmlm appends these to the dictionaries fairseq-preprocess wrote (in this order)
MASK_SYMBOL = "<mask>"
LENGTH_SYMBOL = "<length>"
GMLM_SYMBOLS = (MASK_SYMBOL, LENGTH_SYMBOL)


@dataclass
class T5Config(FairseqDataclass):
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
    relative_attention_init: ChoiceEnum(["normal", "diverse"]) = field(
        default="normal",
        metadata={"help": "how the relative position tables start when training from scratch: normal (a random "
                          "draw at --relative-attention-init-std) or diverse (no draw: each head prefers its own "
                          "offset, -1, +1, 0, -2, ...; see docs/training.md)"},
    )
    tie_output_projection: bool = field(
        default=False, metadata={"help": "output projection = token embedding (scaled by d_model^-0.5)"}
    )
    max_source_positions: int = II("task.max_source_positions")
    max_target_positions: int = II("task.max_target_positions")


# Size presets: only what differs from T5Config's defaults (T5-small's shape). Each model registers them under
# its own name, e.g. gmlm_t5_mini and t5_ar_mini.
SIZES = {
    "tiny": dict(d_model=64, num_heads=4, d_kv=16, d_ff=128, encoder_layers=2, decoder_layers=2),
    "mini": dict(d_model=128, num_heads=4, d_kv=32, d_ff=512, encoder_layers=3, decoder_layers=3),
    "small": dict(),
    "base": dict(d_model=768, num_heads=12, d_ff=3072, encoder_layers=12, decoder_layers=12),
    "large": dict(d_model=1024, num_heads=16, d_ff=4096, encoder_layers=24, decoder_layers=24),
}


def preset(**values):
    """An architecture function that sets VALUES where the command line left them unset."""

    def apply(args):
        for name, value in values.items():
            setattr(args, name, getattr(args, name, value))

    return apply


def register_sizes(model_name: str) -> Dict[str, dict]:
    """Register ``<model_name>_<size>`` for every size preset; returns {architecture name: its values}."""
    architectures = {f"{model_name}_{size}": values for size, values in SIZES.items()}
    for name, values in architectures.items():
        register_model_architecture(model_name, name)(preset(**values))
    return architectures


class FromPretrained:
    """``from_pretrained`` for both models, as fairseq users expect of a translation model."""

    @classmethod
    def from_pretrained(cls, model_name_or_path, checkpoint_file="checkpoint_best.pt", data_name_or_path=".",
                        bpe="sentencepiece", **overrides):
        """fairseq's ``GeneratorHubInterface`` over CHECKPOINT_FILE (colon-separated: an ensemble) in the folder
        MODEL_NAME_OR_PATH, with the dictionaries of the binarised data in DATA_NAME_OR_PATH (relative to the
        model folder when it starts with "."). ``bpe`` and e.g. ``sentencepiece_model``: how text is split into
        pieces (``bpe=None`` for text already split); OVERRIDES replace other saved options by name, as in
        fairseq's own ``from_pretrained``. Its ``translate(sentences, **flags)`` decodes with the task's
        generator, the keyword arguments standing for fairseq-interactive's flags: ``iter_decode_max_iter=4``
        (gmlm_t5), ``beam=4`` (t5_ar)."""
        from fairseq import hub_utils

        loaded = hub_utils.from_pretrained(model_name_or_path, checkpoint_file, data_name_or_path, bpe=bpe,
                                           **overrides)
        return hub_utils.GeneratorHubInterface(loaded["args"], loaded["task"], loaded["models"])


def build_stack(cfg: T5Config, num_layers: int, bidirectional: bool, cross_attention: bool,
                positional_attention: bool = False) -> Stack:
    """One encoder or decoder stack of CFG's shape."""
    return Stack(
        num_layers=num_layers, d_model=cfg.d_model, num_heads=cfg.num_heads, d_kv=cfg.d_kv, d_ff=cfg.d_ff,
        feed_forward=str(cfg.feed_forward), dropout=cfg.dropout, eps=cfg.layer_norm_epsilon,
        bidirectional=bidirectional, cross_attention=cross_attention,
        num_buckets=cfg.relative_attention_num_buckets, max_distance=cfg.relative_attention_max_distance,
        positional_attention=positional_attention,
    )


def build_embeddings(cfg: T5Config, target_dictionary, source_dictionary=None) -> Tuple[nn.Embedding, nn.Embedding]:
    """(source, target) token embeddings: one shared module when the source dictionary is the target's or
    holds the same symbols in the same order (``fairseq-preprocess --joined-dictionary``, or the same
    ``--srcdict`` and ``--tgtdict``), as in T5; two when the data was binarised with a dictionary per side.
    The target embedding is also the output projection under --tie-output-projection."""
    target = nn.Embedding(len(target_dictionary), cfg.d_model)
    if source_dictionary is None or source_dictionary == target_dictionary:  # Dictionary compares its symbols
        return target, target
    return nn.Embedding(len(source_dictionary), cfg.d_model), target


def build_output_head(cfg: T5Config, dictionary_size: int) -> Optional[nn.Linear]:
    """The untied output projection, or None with --tie-output-projection (the embedding serves)."""
    return None if cfg.tie_output_projection else nn.Linear(cfg.d_model, dictionary_size, bias=False)


def output_logits(hidden: torch.Tensor, embed_tokens: nn.Embedding, lm_head: Optional[nn.Linear],
                  d_model: int) -> torch.Tensor:
    """hidden: B x L x C -> B x L x V. Tied: the embedding rows have unit scale and the hidden state is
    RMS-normalised, so T5 rescales by d_model^-0.5."""
    if lm_head is None:
        return (hidden * d_model**-0.5) @ embed_tokens.weight.t()
    return lm_head(hidden)


def init_t5_model(model: nn.Module, cfg: T5Config, embeddings: Sequence[nn.Embedding],
                  lm_head: Optional[nn.Linear]) -> None:
    """T5's initialisation of MODEL: unit-scale token EMBEDDINGS (each distinct module once), ``init_t5_weights``
    for the stacks, and an untied head at d_model^-0.5 (its input is RMS-normalised)."""
    for embedding in {id(embedding): embedding for embedding in embeddings}.values():
        nn.init.normal_(embedding.weight, std=1.0)
    # (checkpoints saved before the option existed lack it; their weights replace the init anyway)
    init_t5_weights(model, cfg.d_model, relative_bias_std=getattr(cfg, "relative_attention_init_std", None),
                    relative_bias_init=str(getattr(cfg, "relative_attention_init", "normal")))
    if lm_head is not None:
        nn.init.normal_(lm_head.weight, std=cfg.d_model**-0.5)


def shifted_right(targets: torch.Tensor, eos: int, pad: Optional[int] = None) -> torch.Tensor:
    """N x T: the decoder input of an autoregressive model for TARGETS (N x T) under teacher forcing, as fairseq
    builds it: EOS, then the targets but the last. With PAD, a position that is padding in TARGETS stays padding
    (for a decoder that sees every position, such as gmlm_t5's with --shift-decoder-input)."""
    shifted = torch.cat([targets.new_full((targets.size(0), 1), eos), targets[:, :-1]], 1)
    return shifted if pad is None else shifted.masked_fill(targets.eq(pad), pad)
