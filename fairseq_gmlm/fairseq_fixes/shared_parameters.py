"""fairseq 0.12.3 (``ve-fairseq``) takes every bias-free layer for a shared parameter: defect 11 in
docs/fairseq-fixes.md.

Before it moves a model to its device, ``fairseq.trainer.Trainer`` catalogues the parameters that two module paths
share (``_catalog_shared_params``), so that it can tie them again afterwards, and logs one "detected shared
parameter" line per extra path. It reads each module's ``_parameters`` dict, where an ``nn.Linear(..., bias=False)``
keeps a ``bias`` entry of ``None``, so all the ``None`` biases of a model are catalogued as one parameter shared by
every bias-free layer: 54 lines per start for ``gmlm_t5_mini``, all of them false. Re-tying ``None`` to ``None`` is
harmless; the lines bury the log and say something untrue. ``catalog_real_parameters_only`` gives the trainer a
catalogue of real parameters only.
"""

from torch import nn


def catalog_shared_parameters(module: nn.Module) -> list[list[str]]:
    """The paths of each parameter reachable under more than one path, in fairseq's order; ``None`` entries skipped."""
    paths: dict[nn.Parameter, list[str]] = {}
    for path, parameter in module.named_parameters(remove_duplicate=False):
        paths.setdefault(parameter, []).append(path)
    return [names for names in paths.values() if len(names) > 1]


def catalog_real_parameters_only() -> None:
    """Make ``fairseq.trainer`` catalogue shared parameters with ``catalog_shared_parameters``. Idempotent."""
    from fairseq import trainer

    trainer._catalog_shared_params = catalog_shared_parameters
