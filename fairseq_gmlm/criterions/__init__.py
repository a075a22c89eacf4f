from fairseq_gmlm.criterions import gmlm_loss  # noqa: F401
