from fairseq_gmlm.models import gmlm_t5, t5_ar  # noqa: F401
