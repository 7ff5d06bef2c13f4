"""Integration tests of the IMAP door and the IMAP store operations against a real Dovecot."""
