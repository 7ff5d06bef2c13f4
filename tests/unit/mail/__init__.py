"""Unit tests of the pure message logic in :mod:`mailhook.mail`."""
