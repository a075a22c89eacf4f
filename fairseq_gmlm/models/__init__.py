from fairseq_gmlm.models import gmlm_t5  # noqa: F401
