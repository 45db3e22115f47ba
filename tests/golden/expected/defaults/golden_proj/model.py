"""Model of golden-proj: the child's override."""

HEAD = "pooled"
UNITS = 32
