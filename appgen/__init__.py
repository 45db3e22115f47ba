"""appgen: scaffold ready-to-train Keras 3 projects from templates."""

__version__ = "0.1.0"
