"""Guards: the outbound guard every send path passes, and inbound threat rules."""
