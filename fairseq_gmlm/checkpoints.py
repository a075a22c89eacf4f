"""What a checkpoint records about the dictionary it was trained with, and the check against it.

The task saves a fingerprint of its target dictionary in the checkpoint's task state and checks it whenever a
checkpoint is loaded: by fairseq-generate/-interactive through the task's ``load_state_dict``, and by
fairseq-train before resuming (through the checkpoint-loading fix in ``fairseq_fixes/checkpoint_loading.py``,
which also passes the file's path under ``CHECKPOINT_PATH_KEY`` so that the message can name it).
"""

import hashlib

from fairseq_gmlm.errors import UsageError

# Key under which the loaded file's path travels in ``state["task_state"]`` to the task's ``load_state_dict``.
CHECKPOINT_PATH_KEY = "fairseq_gmlm_checkpoint_path"


def dictionary_fingerprint(dictionary) -> dict:
    """What a checkpoint records about the dictionary it was trained with (after <mask> and <length>)."""
    digest = hashlib.md5("\n".join(dictionary.symbols).encode("utf-8")).hexdigest()
    return {"size": len(dictionary), "md5": digest}


def check_dictionary(saved: dict, dictionary, dictionary_path: str, checkpoint_path: str) -> None:
    """Raise when ``dictionary`` (read from ``dictionary_path``) is not the one the checkpoint was trained with.

    Without this check a different size surfaces as a tensor size mismatch inside ``load_state_dict``, and a
    same-sized but different dictionary silently translates into the wrong words.
    """
    current = dictionary_fingerprint(dictionary)
    if saved == current:
        return
    how = (f"it has {current['size']} symbols, the checkpoint's has {saved['size']}" if saved["size"] != current["size"]
           else f"both have {current['size']} symbols, but they differ")
    raise UsageError(
        f"the dictionary {dictionary_path} does not match checkpoint {checkpoint_path} ({how}, counting the <mask> and "
        f"<length> symbols the task adds): give the data directory the model was trained on, or binarise your data "
        f"with fairseq-preprocess --srcdict/--tgtdict set to the training data's dict.*.txt"
    )
