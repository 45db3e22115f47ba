"""Package from the golden base."""
