"""The agent pipeline: a tuple of named steps over one typed context (DESIGN.md)."""
