from fairseq_gmlm.optim import adamw_fused  # noqa: F401
from fairseq_gmlm.optim import budget_linear  # noqa: F401
