"""Doors accept mail and normalise it into one :class:`~mailhook.doors.inbound.Inbound`.

They never think: validate, commit to the spool, acknowledge (DESIGN.md "Data flow").
"""
