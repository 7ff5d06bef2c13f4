"""Outbound network access that mail content can influence: SSRF-safe document fetching."""
