"""mailhook: a self-hosted AI email agent that lives in your mail server's delivery path."""

__version__ = "0.1.0"
