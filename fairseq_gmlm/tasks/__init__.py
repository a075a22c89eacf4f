from fairseq_gmlm.tasks import translation_gmlm  # noqa: F401
