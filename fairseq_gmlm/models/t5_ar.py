"""``t5_ar``: the autoregressive T5 of the same family as ``gmlm_t5`` (teacher and speed baseline).

Raffel et al., "Exploring the Limits of Transfer Learning with a Unified Text-to-Text Transformer" (JMLR 2020).
PaDIR (Li et al., "Promises and Pitfalls of Generative Masked Language Modeling", ICML 2024) compares its
parallel decoder with an autoregressive model of the same size and vocabulary; this is that model. It shares
``gmlm_t5``'s blocks (``t5_layers.py``), and its configuration fields, size presets, stack assembly, output
projection and initialisation (``t5_common.py``), and differs only where autoregression requires it: the decoder is causal, its relative position bias unidirectional, it caches keys
and values for step-by-step decoding (fairseq's ``SequenceGenerator``, ``--beam``), and there is no
``<length>`` token or length head. It trains with fairseq's stock ``translation`` task and criteria.

Decoder start symbol: fairseq's decoder input (``prev_output_tokens``) starts with EOS, T5's with its
``decoder_start_token_id``, which is the pad id. The decoder therefore embeds position 0 with the *pad* row
whatever token fairseq put there, so a converted T5 checkpoint decodes exactly as Hugging Face's ``generate``
(``gmlm-convert-hf-t5`` maps T5's pad row onto fairseq's ``<pad>``). The decoder self-attention has no
padding mask: the start position holds pad on purpose, and right padding is never visible to a real position
under the causal mask.

Shapes: B batch, S source length, T target length, C model dim, V vocabulary, H heads, D head dim.
Encoder outputs are batch first (B x S x C), unlike fairseq's transformer (S x B x C).
"""

from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
from fairseq.models import (
    FairseqEncoder,
    FairseqEncoderDecoderModel,
    FairseqIncrementalDecoder,
    register_model,
)
from torch import Tensor, nn

from fairseq_gmlm.models.t5_common import (
    GMLM_SYMBOLS,
    FromPretrained,
    T5Config,
    build_embeddings,
    build_output_head,
    build_stack,
    init_t5_model,
    output_logits,
    register_sizes,
)
from fairseq_gmlm.models.t5_layers import attention_bias_from_padding, causal_bias


@dataclass
class T5ARConfig(T5Config):
    """The fields ``gmlm_t5`` shares (sizes, feed-forward kind, buckets, tied output projection)."""


def t5_decoder_input(prev_output_tokens: Tensor, start_index: int) -> Tensor:
    """fairseq's decoder input starts with EOS; T5 was trained with ``start_index`` (its pad) there.

    prev_output_tokens: B x T, position 0 the start symbol. Returns B x T with position 0 = ``start_index``.
    """
    start = prev_output_tokens.new_full((prev_output_tokens.size(0), 1), start_index)  # B x 1
    return torch.cat([start, prev_output_tokens[:, 1:]], dim=1)


class T5AREncoder(FairseqEncoder):
    def __init__(self, cfg: T5ARConfig, dictionary, embed_tokens: nn.Embedding):
        super().__init__(dictionary)
        self.pad = dictionary.pad()
        self.max_source_positions = cfg.max_source_positions
        self.embed_tokens = embed_tokens
        self.stack = build_stack(cfg, cfg.encoder_layers, bidirectional=True, cross_attention=False)

    def forward(self, src_tokens: Tensor, src_lengths: Optional[Tensor] = None, **unused) -> Dict[str, List[Tensor]]:
        """src_tokens: B x S, left- or right-padded (real tokens contiguous, so relative offsets are unaffected)."""
        padding_mask = src_tokens.eq(self.pad)  # B x S
        x = self.embed_tokens(src_tokens)  # B x S x C
        length = src_tokens.size(1)
        bias = self.stack.relative_position(length, length) + attention_bias_from_padding(padding_mask, x.dtype)
        return {
            "encoder_out": [self.stack(x, bias)],  # B x S x C
            "encoder_padding_mask": [padding_mask],  # B x S
            "src_tokens": [src_tokens],
            "src_lengths": [] if src_lengths is None else [src_lengths],
        }

    def reorder_encoder_out(self, encoder_out: Dict[str, List[Tensor]], new_order: Tensor):
        return {key: [tensor.index_select(0, new_order) for tensor in tensors] for key, tensors in encoder_out.items()}

    def max_positions(self):
        return self.max_source_positions


class T5ARDecoder(FairseqIncrementalDecoder):
    CACHE_KEY = "t5_blocks"

    def __init__(self, cfg: T5ARConfig, dictionary, embed_tokens: nn.Embedding):
        super().__init__(dictionary)
        self.start_index = dictionary.pad()  # T5's decoder_start_token_id, see the module docstring
        self.d_model = cfg.d_model
        self.max_target_positions = cfg.max_target_positions
        self.embed_tokens = embed_tokens
        self.stack = build_stack(cfg, cfg.decoder_layers, bidirectional=False, cross_attention=True)
        self.lm_head = build_output_head(cfg, len(dictionary))

    def forward(self, prev_output_tokens, encoder_out=None, incremental_state=None, features_only=False, **unused):
        """prev_output_tokens: B x T (fairseq's shifted target, starting with EOS). With ``incremental_state``
        only the last position is computed (B x 1 output); the keys and values of earlier ones are cached."""
        hidden = self.extract_features(prev_output_tokens, encoder_out, incremental_state)  # B x T|1 x C
        if features_only:
            return hidden, {"attn": [None], "inner_states": None}
        return self.output_layer(hidden), {"attn": [None], "inner_states": None}

    def extract_features(self, prev_output_tokens, encoder_out=None, incremental_state=None, **unused):
        tokens = t5_decoder_input(prev_output_tokens, self.start_index)  # B x T
        caches = self._caches(incremental_state)
        offset = 0
        if caches is not None:
            offset = tokens.size(1) - 1  # keys cached for every earlier position
            tokens = tokens[:, -1:]  # B x 1
        x = self.embed_tokens(tokens)  # B x Q x C, Q = T or 1
        query_length = tokens.size(1)
        key_length = offset + query_length
        self_bias = self.stack.relative_position(query_length, key_length, query_offset=offset) + causal_bias(
            query_length, key_length, x.device, x.dtype, query_offset=offset
        )  # 1 x H x Q x K
        memory = encoder_out["encoder_out"][0]  # B x S x C
        memory_bias = attention_bias_from_padding(encoder_out["encoder_padding_mask"][0], x.dtype)  # B x 1 x 1 x S
        hidden = self.stack(x, self_bias, memory, memory_bias, caches=caches)  # B x Q x C
        if caches is not None:
            self.set_incremental_state(incremental_state, self.CACHE_KEY, flatten_caches(caches))
        return hidden

    def output_layer(self, hidden: Tensor) -> Tensor:
        return output_logits(hidden, self.embed_tokens, self.lm_head, self.d_model)  # B x T x V

    def _caches(self, incremental_state) -> Optional[List[Dict[str, Optional[Tensor]]]]:
        if incremental_state is None:
            return None
        saved = self.get_incremental_state(incremental_state, self.CACHE_KEY)
        return unflatten_caches(saved or {}, len(self.stack.blocks))

    def reorder_incremental_state(self, incremental_state, new_order: Tensor):
        """Beam search reorders (and drops finished) hypotheses: select the same rows of every cached tensor."""
        saved = self.get_incremental_state(incremental_state, self.CACHE_KEY)
        if saved is None:
            return
        reordered = {key: None if value is None else value.index_select(0, new_order) for key, value in saved.items()}
        self.set_incremental_state(incremental_state, self.CACHE_KEY, reordered)

    def max_positions(self):
        return self.max_target_positions


def flatten_caches(caches: List[Dict[str, Optional[Tensor]]]) -> Dict[str, Optional[Tensor]]:
    """Per-block dicts -> one flat dict ("3.self_k": ...), the shape fairseq's incremental_state stores."""
    return {f"{index}.{name}": value for index, cache in enumerate(caches) for name, value in cache.items()}


def unflatten_caches(flat: Dict[str, Optional[Tensor]], num_blocks: int) -> List[Dict[str, Optional[Tensor]]]:
    caches: List[Dict[str, Optional[Tensor]]] = [{} for _ in range(num_blocks)]
    for key, value in flat.items():
        index, name = key.split(".", 1)
        caches[int(index)][name] = value
    return caches


@register_model("t5_ar", dataclass=T5ARConfig)
class T5ARModel(FromPretrained, FairseqEncoderDecoderModel):
    def __init__(self, cfg: T5ARConfig, dictionary, source_dictionary=None):
        """DICTIONARY: the target's; SOURCE_DICTIONARY: the source's when the data has one per side, else None.
        One embedding serves source, target and (tied) output unless the dictionaries differ."""
        source_dictionary = dictionary if source_dictionary is None else source_dictionary
        source_embedding, target_embedding = build_embeddings(cfg, dictionary, source_dictionary)
        super().__init__(T5AREncoder(cfg, source_dictionary, source_embedding),
                         T5ARDecoder(cfg, dictionary, target_embedding))
        self.cfg = cfg
        init_t5_model(self, cfg, [target_embedding, source_embedding], self.decoder.lm_head)

    @classmethod
    def build_model(cls, cfg: T5ARConfig, task):
        return cls(cfg, task.target_dictionary, task.source_dictionary)

    def max_positions(self):
        return (self.cfg.max_source_positions, self.cfg.max_target_positions)

    def upgrade_state_dict_named(self, state_dict, name):
        """Load a t5_ar trained with fairseq's ``translation`` task under ``translation_gmlm`` (the reranker of
        ``--iter-decode-with-external-reranker``): that task appends ``<mask>`` and ``<length>`` to the
        dictionaries, so this model has those rows and the checkpoint does not. They are added as zeros; the
        reranker never reads or scores them. Any other size mismatch is left for the strict load to report."""
        super().upgrade_state_dict_named(state_dict, name)
        prefix = f"{name}." if name else ""
        dictionaries = {"encoder.embed_tokens.weight": self.encoder.dictionary,
                        "decoder.embed_tokens.weight": self.decoder.dictionary,
                        "decoder.lm_head.weight": self.decoder.dictionary}
        for key, dictionary in dictionaries.items():
            saved = state_dict.get(prefix + key)
            if saved is None:
                continue
            missing = len(dictionary) - saved.size(0)
            if missing == len(GMLM_SYMBOLS) and tuple(dictionary.symbols[-missing:]) == GMLM_SYMBOLS:
                state_dict[prefix + key] = torch.cat([saved, saved.new_zeros(missing, saved.size(1))])


ARCHITECTURES = register_sizes("t5_ar")  # t5_ar_tiny ... t5_ar_large
