"""Outbound network access that users and mail content can influence: the one SSRF host check
(``hosts``), and SSRF-safe document fetching built on it (``fetch``)."""
