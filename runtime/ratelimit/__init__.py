"""Rate limits at runtime: the limit instances, the leaky-bucket window and the figures admission reports."""
