"""Shared machinery with no business rules of its own."""
