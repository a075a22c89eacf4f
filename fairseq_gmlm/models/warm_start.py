"""``--init-from-ar``: start a ``gmlm_t5`` from a trained ``t5_ar`` of the same shape.

PaDIR (Li et al., ICML 2024) fine-tunes pretrained T5 checkpoints; where none is at hand, the project's own
autoregressive T5 (``t5_ar``) trained on the task plays that role. Copied: the shared embedding, or the
source and target embeddings where the data has a dictionary per side (the AR dictionaries are the GMLM's
without the ``<mask>`` and ``<length>`` rows that translation_gmlm appends, which start fresh), every encoder
and decoder block, both final norms, the encoder's relative biases and the output projection. The decoder's self-attention loses its causal mask simply by being run without one; its relative
bias table is mapped from the one-directional to the bidirectional layout (``bidirectional_from_causal``), or with
``--warm-decoder-bias fresh`` keeps the GMLM's own initialisation (the AR table says nothing of keys to the right).
Created fresh: the length head and whatever the AR model has no counterpart for (position inputs,
positional attention). Every parameter copied, mapped, created or dropped is logged once by name.
"""

import logging
from typing import Dict, List, NamedTuple, Optional

import torch

from fairseq_gmlm.errors import UsageError
from fairseq_gmlm.models.t5_layers import bidirectional_from_causal

logger = logging.getLogger(__name__)

DECODER_BIAS = "decoder.relative_position.relative_attention_bias.weight"
# --warm-decoder-bias: the decoder's relative-bias table mapped from the AR model's (mirror) or left as initialised
WARM_DECODER_BIASES = ("mirror", "fresh")
SOURCE_EMBEDDING = "source_embed_tokens.weight"  # gmlm_t5's, only with a dictionary per side
EXTRA_ROWS = ("embed_tokens.weight", SOURCE_EMBEDDING, "lm_head.weight")  # the AR has no <mask>/<length> rows


class WarmStart(NamedTuple):
    state: Dict[str, torch.Tensor]  # the GMLM's full state dict
    copied: List[str]
    mapped: List[str]
    created: List[str]
    dropped: List[str]


def gmlm_name(ar_name: str, separate_source: bool = False) -> Optional[str]:
    """The gmlm_t5 parameter a t5_ar parameter becomes, or None (the decoder's copy of the shared embedding).
    ``separate_source``: the models have a dictionary per side, so a source and a target embedding each."""
    if separate_source and ar_name in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight"):
        return SOURCE_EMBEDDING if ar_name.startswith("encoder.") else "embed_tokens.weight"
    if ar_name == "decoder.embed_tokens.weight":
        return None
    if ar_name == "encoder.embed_tokens.weight":
        return "embed_tokens.weight"
    if ar_name == "decoder.lm_head.weight":
        return "lm_head.weight"
    for side in ("encoder", "decoder"):
        if ar_name.startswith(f"{side}.stack."):
            return side + "." + ar_name[len(f"{side}.stack."):]
    return ar_name


def warm_state(ar_state: Dict[str, torch.Tensor], gmlm_state: Dict[str, torch.Tensor], num_buckets: int,
               max_distance: int, path: str = "the AR checkpoint", decoder_bias: str = "mirror") -> WarmStart:
    """GMLM_STATE (a freshly initialised gmlm_t5's) with every parameter that AR_STATE (a t5_ar's) has; the
    decoder's relative-bias table as DECODER_BIAS says (WARM_DECODER_BIASES)."""
    if decoder_bias not in WARM_DECODER_BIASES:
        raise UsageError(f"--warm-decoder-bias {decoder_bias!r}: choose one of {', '.join(WARM_DECODER_BIASES)}")
    state = dict(gmlm_state)
    copied, mapped, dropped = [], [], []
    separate_source = SOURCE_EMBEDDING in state
    for ar_name, value in ar_state.items():
        name = gmlm_name(ar_name, separate_source)
        if name is None or (name == DECODER_BIAS and decoder_bias == "fresh"):
            continue
        if name not in state:
            dropped.append(ar_name)
            continue
        target = state[name]
        if name == DECODER_BIAS:
            value = bidirectional_from_causal(value, num_buckets, max_distance)
            mapped.append(name)
        elif name in EXTRA_ROWS and value.dim() == 2 and value.size(0) < target.size(0):
            value = torch.cat([value, target[value.size(0):]])  # <mask>, <length> rows keep their fresh init
            copied.append(name)
        else:
            copied.append(name)
        if value.shape != target.shape:
            raise UsageError(
                f"--init-from-ar {path}: {ar_name} has shape {tuple(value.shape)} but gmlm_t5's {name} has "
                f"{tuple(target.shape)}: give the GMLM the AR model's shape (the same --arch size, e.g. t5_ar_mini "
                f"-> gmlm_t5_mini) and the same binarised data"
            )
        state[name] = value.to(target.dtype)
    created = sorted(set(state) - set(copied) - set(mapped))
    return WarmStart(state, copied, mapped, created, dropped)


def check_vocabulary(ar_state: Dict[str, torch.Tensor], dictionary_size: int, path: str,
                     source_dictionary_size: Optional[int] = None) -> None:
    """Raise unless the AR embeddings have the rows of these dictionaries less <mask> and <length>.
    ``source_dictionary_size``: the source's, where the data has a dictionary per side (None: one joint)."""
    ar_separate = not torch.equal(ar_state["encoder.embed_tokens.weight"], ar_state["decoder.embed_tokens.weight"])
    if ar_separate != (source_dictionary_size is not None):
        def layout(separate):
            return "a dictionary per side" if separate else "one dictionary for source and target"

        raise UsageError(
            f"--init-from-ar {path}: the AR model was trained on data with {layout(ar_separate)}, this data has "
            f"{layout(not ar_separate)}: train the AR model on the same binarised data"
        )
    sides = {"encoder": source_dictionary_size or dictionary_size, "decoder": dictionary_size}
    for side, size in sides.items():
        rows = ar_state[f"{side}.embed_tokens.weight"].size(0)
        if rows != size - 2:
            raise UsageError(
                f"--init-from-ar {path}: its {side} embedding has {rows} rows, but this data's "
                f"{'source' if side == 'encoder' else 'target'} dictionary has {size - 2} symbols (plus <mask> and "
                f"<length>): train the AR model on the same binarised data"
            )


def init_from_ar(model, path: str) -> None:
    """Load the t5_ar checkpoint PATH into MODEL (a gmlm_t5) as described in the module docstring."""
    from fairseq import checkpoint_utils

    checkpoint = checkpoint_utils.load_checkpoint_to_cpu(path)
    ar_state = checkpoint["model"]
    if "encoder.stack.final_layer_norm.weight" not in ar_state:
        raise UsageError(f"--init-from-ar {path}: not a t5_ar checkpoint (no encoder.stack parameters)")
    source = model.source_embed_tokens
    check_vocabulary(ar_state, len(model.dictionary), path, None if source is None else source.num_embeddings)
    cfg = model.cfg
    warm = warm_state(ar_state, model.state_dict(), cfg.relative_attention_num_buckets,
                      cfg.relative_attention_max_distance, path, str(getattr(cfg, "warm_decoder_bias", "mirror")))
    model.load_state_dict(warm.state)
    logger.info("--init-from-ar %s: copied %d parameters: %s", path, len(warm.copied), ", ".join(warm.copied))
    logger.info("--init-from-ar: mapped the causal decoder bias table to the bidirectional layout: %s",
                ", ".join(warm.mapped) or "none (--warm-decoder-bias fresh)")
    logger.info("--init-from-ar: created fresh: %s", ", ".join(warm.created) or "none")
    logger.info("--init-from-ar: dropped (no counterpart in gmlm_t5): %s", ", ".join(warm.dropped) or "none")
