"""Tiny decoder-only transformers trained on multi-digit addition (needs torch)."""
