"""Signed webhooks: users' endpoints, events derived from the activity log, and their delivery.

The activity log is the source of truth (every node writes it, it survives restarts): the
fan-out (:mod:`.fanout`) turns new activity rows into ``webhook_deliveries`` rows, one per
endpoint and event, and the dispatcher (:mod:`.dispatcher`) sends them, signed
(:mod:`.signing`), to addresses vetted against SSRF (:mod:`.urls`). docs/webhooks.md is the
user-facing description.
"""
