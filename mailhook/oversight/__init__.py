"""Oversight: the owner's approval of held replies."""
