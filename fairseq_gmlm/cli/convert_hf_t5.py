"""A local Hugging Face T5 checkpoint -> a fairseq checkpoint of ``gmlm_t5`` or ``t5_ar`` plus a fairseq dict.txt.

    gmlm-convert-hf-t5 --hf-dir t5-small/ --out t5-gmlm/ --target gmlm_t5 --max-target-positions 128

reads ``HF_DIR/config.json``, ``HF_DIR/model.safetensors`` (or ``pytorch_model.bin``, or their sharded
``*.index.json``) and ``HF_DIR/spiece.model``, and writes

    OUT/checkpoint.pt          loads with fairseq-train --finetune-from-model/--restore-file and
                               checkpoint_utils.load_model_ensemble (always with --user-dir fairseq_gmlm)
    OUT/dict.txt               give it to fairseq-preprocess as --srcdict and --tgtdict
    OUT/spiece.model           the T5 sentencepiece model, to encode text before fairseq-preprocess
    OUT/model_flags.txt        the --arch and shape flags fairseq-train needs to build the same model
    OUT/conversion_report.json what was mapped, what was created fresh, what was left out, what was
                               transformed rather than copied (gmlm_t5's decoder position bias) (all by name)

Vocabulary. T5 ids: 0 <pad>, 1 </s>, 2 <unk>, 3.. sentencepiece pieces, then the sentinels <extra_id_99> ..
<extra_id_0> (and, in some checkpoints, unused rows up to config.vocab_size). fairseq's Dictionary always puts
<s>, <pad>, </s>, <unk> at 0..3 and the lines of dict.txt after them, so the two cannot agree one to one; the
embedding (and output) rows are permuted instead:

    fairseq <s>    0  <- no T5 row: zero vector (output logit 0; fairseq's translation data never holds <s>)
    fairseq <pad>  1  <- T5 0 <pad>   (also T5's decoder start symbol, see models/t5_ar.py)
    fairseq </s>   2  <- T5 1 </s>
    fairseq <unk>  3  <- T5 2 <unk>
    fairseq i + 1     <- T5 i, for every i >= 3 (dict.txt lists T5 ids 3.. in order)

dict.txt names T5's <extra_id_0> and <extra_id_1> rows ``<mask>`` and ``<length>``, so translation_gmlm's
``add_symbol`` finds them there instead of appending rows; without sentinels the two symbols are appended as
new rows. Unused padding rows are named ``madeupwordNNNN`` like fairseq-preprocess's padding. A converted model
therefore has one row more than T5 (``<s>``); comparing logits with T5, read fairseq column i + 1 for T5 id i.

Output head. T5 scales the decoder output by d_model^-0.5 when its config says ``tie_word_embeddings`` (the
original T5; Hugging Face >= 5 records this as ``scale_decoder_outputs``) and not for T5 v1.1 (untied head).
A tied, scaled head becomes ``--tie-output-projection``; any other combination becomes a separate
``lm_head`` holding the (scaled, where T5 scales) head weights, which computes the same logits.

Relative position biases. T5's encoder table is bidirectional (half the buckets for keys to the left, half for
keys to the right) and is copied unchanged, as is the decoder table for ``t5_ar``: T5's decoder table is
one-directional (all buckets for keys to the left), like t5_ar's. gmlm_t5's decoder attends both ways and
reads its table bidirectionally, so copying T5's rows unchanged would put the biases of far-left keys on keys
to the right. For gmlm_t5 the decoder table goes through ``t5_layers.bidirectional_from_causal`` (with
config.json's ``relative_attention_num_buckets`` and ``relative_attention_max_distance``): each left bucket
takes the causal bias of its distance (exact buckets) or the mean over the distances it covers, and each
right bucket mirrors its left counterpart. A converted gmlm_t5 decoder therefore starts near, not equal to,
T5's decoder; the encoder, and all of t5_ar, compute what T5 computes.
"""

import argparse
import json
import logging
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch

from fairseq_gmlm.cli import PLUGIN

logger = logging.getLogger("convert_hf_t5")

T5_PAD, T5_EOS, T5_UNK = 0, 1, 2
FAIRSEQ_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # fairseq Dictionary ids 0..3
MASK_SYMBOL, LENGTH_SYMBOL = "<mask>", "<length>"  # same strings as fairseq_gmlm.models.gmlm_t5
SENTINEL_FOR = {MASK_SYMBOL: "<extra_id_0>", LENGTH_SYMBOL: "<extra_id_1>"}
FEED_FORWARD = {"relu": "relu", "gated-gelu": "gated-gelu"}  # T5 feed_forward_proj -> our --feed-forward
SUPPORTED_MODEL_TYPES = ("t5", "mt5")


@dataclass(frozen=True)
class TargetLayout:
    """Where the T5 parts live in a fairseq model's state dict."""

    task: str
    stacks: Dict[str, str]  # "encoder"/"decoder" -> prefix of that Stack's parameters
    embeddings: Tuple[str, ...]  # names that hold the one shared token embedding
    lm_head: str
    bidirectional_decoder: bool = False  # decoder reads its relative-bias table both ways (see the docstring)


TARGETS = {
    "gmlm_t5": TargetLayout(
        task="translation_gmlm", stacks={"encoder": "encoder.", "decoder": "decoder."},
        embeddings=("embed_tokens.weight",), lm_head="lm_head.weight", bidirectional_decoder=True,
    ),
    "t5_ar": TargetLayout(
        task="translation", stacks={"encoder": "encoder.stack.", "decoder": "decoder.stack."},
        embeddings=("encoder.embed_tokens.weight", "decoder.embed_tokens.weight"), lm_head="decoder.lm_head.weight",
    ),
}


class ConversionError(ValueError):
    pass


# ---- configuration ---------------------------------------------------------------------------------------


def read_json(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def decoder_output_scaled(config: dict) -> bool:
    """Whether T5 multiplies the decoder output by d_model^-0.5 before the head (see the module docstring)."""
    if "scale_decoder_outputs" in config:
        return bool(config["scale_decoder_outputs"])
    return config.get("tie_word_embeddings", True) is not False


def model_fields(config: dict, config_path: str, tied_head: bool) -> Dict[str, object]:
    """T5 config.json -> values of GMLMT5Config fields (shared by gmlm_t5 and t5_ar)."""
    model_type = config.get("model_type", "t5")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ConversionError(
            f"{config_path}: model_type {model_type!r} is not supported (only {', '.join(SUPPORTED_MODEL_TYPES)}: "
            f"one relative position table per stack, shared by its layers)"
        )
    kind = config.get("feed_forward_proj", "relu")
    if kind not in FEED_FORWARD:
        raise ConversionError(
            f"{config_path}: feed_forward_proj {kind!r} has no counterpart in --feed-forward "
            f"(supported: {', '.join(FEED_FORWARD)})"
        )
    try:
        num_layers = int(config["num_layers"])
        return dict(
            d_model=int(config["d_model"]), num_heads=int(config["num_heads"]), d_kv=int(config["d_kv"]),
            d_ff=int(config["d_ff"]), encoder_layers=num_layers,
            decoder_layers=int(config.get("num_decoder_layers") or num_layers),
            feed_forward=FEED_FORWARD[kind], dropout=float(config.get("dropout_rate", 0.1)),
            layer_norm_epsilon=float(config.get("layer_norm_epsilon", 1e-6)),
            relative_attention_num_buckets=int(config.get("relative_attention_num_buckets", 32)),
            relative_attention_max_distance=int(config.get("relative_attention_max_distance", 128)),
            tie_output_projection=tied_head,
        )
    except KeyError as missing:
        raise ConversionError(f"{config_path} has no {missing.args[0]!r}, which a T5 config must give") from None


def model_flags(target: str, fields: Dict[str, object], max_source: int, max_target: int) -> List[str]:
    """The fairseq-train flags that build the same model (the checkpoint's shapes must match them)."""
    flags = ["--arch", target]
    for name, value in fields.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            flags += [flag] if value else []
        else:
            flags += [flag, str(value)]
    return flags + ["--max-source-positions", str(max_source), "--max-target-positions", str(max_target)]


# ---- weights ---------------------------------------------------------------------------------------------


def load_hf_state_dict(hf_dir: str) -> Dict[str, torch.Tensor]:
    """model.safetensors, pytorch_model.bin, or a sharded *.index.json of either; tensors as float32."""
    candidates = [
        "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"
    ]
    for name in candidates:
        path = os.path.join(hf_dir, name)
        if not os.path.isfile(path):
            continue
        files = [path]
        if name.endswith(".index.json"):
            files = [os.path.join(hf_dir, shard) for shard in sorted(set(read_json(path)["weight_map"].values()))]
        state: Dict[str, torch.Tensor] = {}
        for file in files:
            state.update(_load_weight_file(file))
        return {key: value.float() for key, value in state.items()}
    raise ConversionError(f"--hf-dir {hf_dir} holds none of {', '.join(candidates)}")


def _load_weight_file(path: str) -> Dict[str, torch.Tensor]:
    if path.endswith(".safetensors"):
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ConversionError(f"reading {path} needs the safetensors package (pip install safetensors)") from None
        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


_BLOCK = re.compile(r"^(encoder|decoder)\.block\.(\d+)\.layer\.(\d+)\.(.+)$")
_SUBLAYERS = {  # T5's block.N.layer.M -> our Block's sublayer
    "encoder": ("self_attention", "feed_forward"),
    "decoder": ("self_attention", "cross_attention", "feed_forward"),
}
_INNER = re.compile(r"^(?:SelfAttention|EncDecAttention|DenseReluDense)\.(q|k|v|o|wi|wi_0|wi_1|wo)\.weight$")


def stack_parameter(hf_name: str) -> Optional[Tuple[str, str]]:
    """A Hugging Face T5 block parameter -> ("encoder"|"decoder", name inside our ``Stack``), or None."""
    if hf_name in ("encoder.final_layer_norm.weight", "decoder.final_layer_norm.weight"):
        return hf_name.split(".", 1)[0], "final_layer_norm.weight"
    match = _BLOCK.match(hf_name)
    if match is None:
        return None
    role, block, layer, rest = match.group(1), int(match.group(2)), int(match.group(3)), match.group(4)
    if layer >= len(_SUBLAYERS[role]):
        return None
    sublayer = _SUBLAYERS[role][layer]
    if rest == "SelfAttention.relative_attention_bias.weight" and block == 0:
        return role, "relative_position.relative_attention_bias.weight"  # one table per stack, kept in block 0
    if rest == "layer_norm.weight":
        return role, f"blocks.{block}.{sublayer}.layer_norm.weight"
    inner = _INNER.match(rest)
    if inner is None:
        return None
    return role, f"blocks.{block}.{sublayer}.inner.{inner.group(1)}.weight"


def remap_rows(weight: torch.Tensor, t5_to_fairseq: List[int], fresh: torch.Tensor) -> torch.Tensor:
    """weight: V_t5 x C -> V_fairseq x C: row i moves to t5_to_fairseq[i]; other rows come from ``fresh``."""
    rows = fresh.clone()  # V_fairseq x C
    rows[torch.tensor(t5_to_fairseq)] = weight[: len(t5_to_fairseq)]
    return rows


# ---- vocabulary ------------------------------------------------------------------------------------------


def t5_token_names(spiece_path: str, vocab_size: int, added: Dict[int, str]) -> List[str]:
    """One name per T5 embedding row (``vocab_size`` of them): pieces, then added tokens (sentinels), then
    ``madeupwordNNNN`` for rows no token uses."""
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=spiece_path)
    if (processor.pad_id(), processor.eos_id(), processor.unk_id()) != (T5_PAD, T5_EOS, T5_UNK):
        raise ConversionError(
            f"{spiece_path}: expected T5's special ids pad=0, eos=1, unk=2, found pad={processor.pad_id()}, "
            f"eos={processor.eos_id()}, unk={processor.unk_id()}"
        )
    size = processor.get_piece_size()
    if size > vocab_size:
        raise ConversionError(f"{spiece_path} has {size} pieces but config.json's vocab_size is {vocab_size}")
    names = [processor.id_to_piece(i) for i in range(size)]
    unused = 0
    for index in range(size, vocab_size):
        if index in added:
            names.append(added[index])
        else:
            names.append(f"madeupword{unused:04d}")
            unused += 1
    return names


def added_tokens(hf_dir: str, piece_count: int, vocab_size: int, extra_ids: Optional[int]) -> Dict[int, str]:
    """T5 ids past the sentencepiece pieces -> names: explicit ids from tokenizer_config.json's
    ``added_tokens_decoder`` or tokenizer.json's ``added_tokens`` where saved, else ``extra_ids`` sentinels
    (--extra-ids, tokenizer_config.json's "extra_ids", or T5's 100) counted down from <extra_id_{n-1}>."""
    if extra_ids is None:
        config_path, fast_path = os.path.join(hf_dir, "tokenizer_config.json"), os.path.join(hf_dir, "tokenizer.json")
        tokenizer_config = read_json(config_path) if os.path.isfile(config_path) else {}
        explicit = {int(i): entry["content"] for i, entry in tokenizer_config.get("added_tokens_decoder", {}).items()}
        if not explicit and os.path.isfile(fast_path):
            explicit = {entry["id"]: entry["content"] for entry in read_json(fast_path).get("added_tokens", [])}
        explicit = {i: name for i, name in explicit.items() if i >= piece_count}
        if explicit:
            return explicit
        extra_ids = int(tokenizer_config.get("extra_ids", min(100, vocab_size - piece_count)))
    if piece_count + extra_ids > vocab_size:
        raise ConversionError(
            f"--extra-ids {extra_ids} does not fit: {piece_count} pieces + {extra_ids} sentinels > "
            f"config.json's vocab_size {vocab_size}"
        )
    return {piece_count + extra_ids - 1 - n: f"<extra_id_{n}>" for n in range(extra_ids)}


@dataclass
class VocabularyMap:
    entries: List[str]  # dict.txt words, fairseq ids 4, 5, ...
    t5_to_fairseq: List[int]  # fairseq id of each T5 row
    fresh_rows: Dict[str, int] = field(default_factory=dict)  # fairseq rows with no T5 row: name -> id
    renamed: Dict[str, str] = field(default_factory=dict)  # T5 name -> name in dict.txt

    @property
    def size(self) -> int:
        return len(FAIRSEQ_SPECIALS) + len(self.entries)


def fairseq_vocabulary(t5_names: List[str]) -> VocabularyMap:
    """The id mapping of the module docstring, with <mask>/<length> on sentinel rows where they exist."""
    specials = {T5_PAD: "<pad>", T5_EOS: "</s>", T5_UNK: "<unk>"}
    vocabulary = VocabularyMap(entries=[], t5_to_fairseq=[], fresh_rows={"<s>": 0})
    symbol_at = {sentinel: symbol for symbol, sentinel in SENTINEL_FOR.items() if sentinel in t5_names}
    taken = set(FAIRSEQ_SPECIALS)
    for t5_id, name in enumerate(t5_names):
        if t5_id in specials:
            vocabulary.t5_to_fairseq.append(FAIRSEQ_SPECIALS.index(specials[t5_id]))
            continue
        word = symbol_at.get(name, name)
        clashes = word in taken or (word in SENTINEL_FOR and name not in symbol_at)  # a piece spelt "<mask>"
        if not word or any(character.isspace() for character in word) or clashes:
            word = f"<t5_row_{t5_id}>"  # a name fairseq's whitespace tokenizer or Dictionary cannot hold
        if word != name:
            vocabulary.renamed[name] = word
        taken.add(word)
        vocabulary.t5_to_fairseq.append(len(FAIRSEQ_SPECIALS) + len(vocabulary.entries))
        vocabulary.entries.append(word)
    for symbol in SENTINEL_FOR:
        if symbol not in taken:
            vocabulary.fresh_rows[symbol] = vocabulary.size
            vocabulary.entries.append(symbol)
    return vocabulary


def write_dictionary(path: str, entries: List[str]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for word in entries:
            f.write(f"{word} 1\n")


# ---- the fairseq model -----------------------------------------------------------------------------------


def build_fairseq_model(target: str, flags: List[str], dictionary_path: str, seed: int):
    """Parse the fairseq-train command line these flags describe and build the (fresh) model from it."""
    from fairseq import options
    from fairseq.data import Dictionary
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    import fairseq_gmlm  # noqa: F401  (registers the models)
    from fairseq_gmlm.models.gmlm_t5 import GMLMT5Model
    from fairseq_gmlm.models.t5_ar import T5ARModel

    data_dir = os.path.dirname(os.path.abspath(dictionary_path))
    argv = [data_dir, "--user-dir", PLUGIN, "--task", TARGETS[target].task, "--seed", str(seed), *flags]
    args = options.parse_args_and_arch(options.get_training_parser(), argv)
    cfg = convert_namespace_to_omegaconf(args)
    dictionary = Dictionary.load(dictionary_path)
    size = len(dictionary)
    if target == "gmlm_t5":  # what translation_gmlm does; dict.txt already holds both symbols
        dictionary.add_symbol(MASK_SYMBOL)
        dictionary.add_symbol(LENGTH_SYMBOL)
    if len(dictionary) != size:
        raise ConversionError(f"{dictionary_path} lacks <mask>/<length>: the task would append rows")
    torch.manual_seed(seed)
    model_class = GMLMT5Model if target == "gmlm_t5" else T5ARModel
    return cfg, model_class(cfg.model, dictionary)


def converted_state(
    hf_state: Dict[str, torch.Tensor], fresh_state: Dict[str, torch.Tensor], layout: TargetLayout,
    vocabulary: VocabularyMap, d_model: int, scaled: bool, tied_head: bool,
    num_buckets: int = 32, max_distance: int = 128,
) -> Tuple[Dict[str, torch.Tensor], List[str], List[str], List[str]]:
    """Returns (the model's full state dict, our parameters not taken from T5, T5 tensors left out with why,
    T5 tensors converted other than by copying, with how). ``num_buckets``/``max_distance``: config.json's
    relative-attention fields, for the bidirectional decoder table (``layout.bidirectional_decoder``)."""
    from fairseq_gmlm.models.t5_layers import bidirectional_from_causal

    state = dict(fresh_state)
    filled, unused, transformed = set(), [], []

    def put(name: str, value: torch.Tensor, source: str) -> None:
        if name not in state:
            raise ConversionError(f"{source} maps to {name}, which the fairseq model does not have")
        if state[name].shape != value.shape:
            raise ConversionError(
                f"{source} has shape {tuple(value.shape)} but {name} has {tuple(state[name].shape)}: "
                f"the model flags do not match config.json"
            )
        state[name] = value
        filled.add(name)

    shared = hf_state.get("shared.weight", hf_state.get("encoder.embed_tokens.weight"))
    if shared is None:
        raise ConversionError("the checkpoint has neither shared.weight nor encoder.embed_tokens.weight")
    if shared.size(0) != len(vocabulary.t5_to_fairseq):
        raise ConversionError(
            f"shared.weight has {shared.size(0)} rows but config.json's vocab_size is {len(vocabulary.t5_to_fairseq)}"
        )
    embedding = remap_rows(shared, vocabulary.t5_to_fairseq, state[layout.embeddings[0]])
    embedding[vocabulary.fresh_rows["<s>"]] = 0.0
    for name in layout.embeddings:
        put(name, embedding, "shared.weight")

    head = hf_state.get("lm_head.weight")
    separate_head = head is not None and not torch.equal(head, shared)
    if not tied_head:
        weight = (head if head is not None else shared) * (d_model**-0.5 if scaled else 1.0)
        rows = remap_rows(weight, vocabulary.t5_to_fairseq, state[layout.lm_head])
        rows[vocabulary.fresh_rows["<s>"]] = 0.0
        put(layout.lm_head, rows, "lm_head.weight" if separate_head else "shared.weight")

    for hf_name, value in hf_state.items():
        if hf_name in ("shared.weight", "lm_head.weight"):
            continue
        if hf_name in ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight"):
            if not torch.equal(value, shared):
                unused.append(f"{hf_name} (differs from shared.weight; the fairseq models share one embedding)")
            continue
        located = stack_parameter(hf_name)
        if located is None:
            legacy = "EncDecAttention.relative_attention_bias" in hf_name
            why = "ignored by Hugging Face T5 too" if legacy else "no counterpart"
            unused.append(f"{hf_name} ({why})")
            continue
        role, name = located
        if role == "decoder" and layout.bidirectional_decoder and name.startswith("relative_position."):
            value = bidirectional_from_causal(value, num_buckets, max_distance)
            transformed.append(
                f"{hf_name} (one-directional -> bidirectional layout: left buckets from the causal biases of "
                f"their distances, averaged where a bucket covers several; right buckets mirror the left)"
            )
        put(layout.stacks[role] + name, value, hf_name)
    not_from_t5 = sorted(name for name in state if name not in filled)
    return state, not_from_t5, unused, transformed


def checkpoint_dict(cfg, model_state: Dict[str, torch.Tensor], report: dict) -> dict:
    """What fairseq's Trainer.state_dict saves, for a model that has not been trained here."""
    from omegaconf import OmegaConf

    return {
        "args": None,
        "cfg": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
        "model": model_state,
        "criterion": None,
        "optimizer_history": [
            {"criterion_name": "none (converted from Hugging Face T5)", "optimizer_name": "none",
             "lr_scheduler_state": {"best": None}, "num_updates": 0}
        ],
        "last_optimizer_state": None,
        "extra_state": {
            "train_iterator": {"epoch": 1, "iterations_in_epoch": 0, "version": 2},
            "previous_training_time": 0,
            "converted_from_hf_t5": report["hf_dir"],
        },
    }


# ---- driver ----------------------------------------------------------------------------------------------


def convert(hf_dir: str, out_dir: str, target: str, max_source: int = 1024, max_target: int = 1024,
            extra_ids: Optional[int] = None, seed: int = 1) -> dict:
    """Write OUT/{checkpoint.pt, dict.txt, spiece.model, model_flags.txt, conversion_report.json}; returns
    the report."""
    if target not in TARGETS:
        raise ConversionError(f"--target must be one of {', '.join(TARGETS)}, got {target!r}")
    config_path, spiece_path = os.path.join(hf_dir, "config.json"), os.path.join(hf_dir, "spiece.model")
    for path in (config_path, spiece_path):
        if not os.path.isfile(path):
            raise ConversionError(f"--hf-dir {hf_dir} has no {os.path.basename(path)}")
    config = read_json(config_path)
    hf_state = load_hf_state_dict(hf_dir)

    vocab_size = int(config.get("vocab_size", 32128))
    import sentencepiece

    piece_count = sentencepiece.SentencePieceProcessor(model_file=spiece_path).get_piece_size()
    t5_names = t5_token_names(spiece_path, vocab_size, added_tokens(hf_dir, piece_count, vocab_size, extra_ids))
    vocabulary = fairseq_vocabulary(t5_names)

    scaled = decoder_output_scaled(config)
    head = hf_state.get("lm_head.weight")
    shared = hf_state.get("shared.weight", hf_state.get("encoder.embed_tokens.weight"))
    separate_head = head is not None and shared is not None and not torch.equal(head, shared)
    tied_head = scaled and not separate_head
    fields = model_fields(config, config_path, tied_head)
    flags = model_flags(target, fields, max_source, max_target)

    os.makedirs(out_dir, exist_ok=True)
    dictionary_path = os.path.join(out_dir, "dict.txt")
    write_dictionary(dictionary_path, vocabulary.entries)
    cfg, model = build_fairseq_model(target, flags, dictionary_path, seed)
    state, not_from_t5, unused, transformed = converted_state(
        hf_state, model.state_dict(), TARGETS[target], vocabulary, fields["d_model"], scaled, tied_head,
        fields["relative_attention_num_buckets"], fields["relative_attention_max_distance"],
    )
    model.load_state_dict(state, strict=True)

    notes = []
    if not tied_head:
        source = "T5's lm_head.weight" if separate_head else "a copy of shared.weight (T5 ties it without scaling)"
        notes.append(f"separate output head: {source}" + (", scaled by d_model^-0.5 as T5 scales" if scaled else ""))
    report = {
        "hf_dir": os.path.abspath(hf_dir),
        "target": target,
        "model_flags": flags,
        "dictionary": {"path": dictionary_path, "fairseq_size": vocabulary.size, "t5_size": len(t5_names),
                       "mapping": "fairseq <pad>,</s>,<unk> = T5 0,1,2; fairseq i+1 = T5 i for i >= 3"},
        "fresh_dictionary_rows": vocabulary.fresh_rows,
        "renamed_t5_tokens": vocabulary.renamed,
        "parameters_not_from_t5": not_from_t5,
        "t5_tensors_left_out": unused,
        "t5_tensors_transformed": transformed,
        "notes": notes,
    }
    torch.save(checkpoint_dict(cfg, model.state_dict(), report), os.path.join(out_dir, "checkpoint.pt"))
    shutil.copyfile(spiece_path, os.path.join(out_dir, "spiece.model"))
    with open(os.path.join(out_dir, "model_flags.txt"), "w", encoding="utf-8") as f:
        f.write(" ".join(flags) + "\n")
    with open(os.path.join(out_dir, "conversion_report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
    log_report(report)
    return report


def log_report(report: dict) -> None:
    logger.info("wrote %s checkpoint, dict.txt (%d entries incl. specials) and model_flags.txt: %s",
                report["target"], report["dictionary"]["fairseq_size"], " ".join(report["model_flags"]))
    for name, index in report["fresh_dictionary_rows"].items():
        logger.info("dictionary row %d %s has no T5 row (zero/fresh initialisation)", index, name)
    for old, new in report["renamed_t5_tokens"].items():
        logger.info("T5 token %r is %r in dict.txt", old, new)
    for name in report["parameters_not_from_t5"]:
        logger.info("not in the T5 checkpoint, freshly initialised: %s", name)
    for name in report["t5_tensors_left_out"]:
        logger.warning("T5 tensor left out: %s", name)
    for name in report["t5_tensors_transformed"]:
        logger.info("T5 tensor converted, not copied: %s", name)
    for note in report["notes"]:
        logger.info("%s", note)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--hf-dir", required=True, help="local Hugging Face T5 folder (config.json, weights, spiece.model)"
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--target", choices=sorted(TARGETS), default="gmlm_t5")
    parser.add_argument("--max-source-positions", type=int, default=1024, help="as given to fairseq-train")
    parser.add_argument("--max-target-positions", type=int, default=1024,
                        help="as given to fairseq-train; sizes gmlm_t5's length head")
    parser.add_argument("--extra-ids", type=int, default=None,
                        help="number of <extra_id_N> sentinels after the pieces "
                             "(default: from the tokenizer files, else 100)")
    parser.add_argument("--seed", type=int, default=1, help="seed for the parameters T5 does not provide")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(name)s | %(message)s")
    try:
        convert(args.hf_dir, args.out, args.target, args.max_source_positions, args.max_target_positions,
                args.extra_ids, args.seed)
    except ConversionError as error:
        raise SystemExit(f"convert_hf_t5: {error}")


if __name__ == "__main__":
    sys.exit(main())
