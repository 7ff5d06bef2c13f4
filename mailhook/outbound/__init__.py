"""How replies leave: SMTP submission to the relay, or the sandbox outbox."""
