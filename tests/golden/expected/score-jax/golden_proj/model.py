"""Model of golden-proj: the child's override."""

HEAD = "dense"
UNITS = 64
