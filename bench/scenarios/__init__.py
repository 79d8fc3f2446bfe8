"""Scenarios by area: every module here registers its own (see bench/README.md)."""
