"""Guards: the outbound guard every send path passes, and the inbound threat scorer.

``outbound`` (with ``rules_credentials``, ``rules_pii``, ``rules_internal`` and ``attachments``)
decides whether a message may leave; ``inbound`` (with ``sanitize``, ``html_hidden``, ``css``,
``rules_inbound``, ``rules_links`` and ``rules_auth``) decides what the model may read. Nothing in
this package does I/O: every function is pure and takes bytes or parsed messages.
"""
