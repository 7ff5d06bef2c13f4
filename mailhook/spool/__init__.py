"""The durable spool: doors enqueue sealed raw messages, workers claim, retry and dead-letter."""
