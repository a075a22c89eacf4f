from fairseq_gmlm.optim import adamw_fused  # noqa: F401
