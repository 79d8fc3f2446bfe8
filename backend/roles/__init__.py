"""roles domain."""
