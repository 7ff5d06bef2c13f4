"""Thin controllers over the service objects."""
