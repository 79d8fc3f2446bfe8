"""Tokens, password hashes and key material: the only places secrets are handled."""
