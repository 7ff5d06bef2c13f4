"""Pure message logic (parse, addresses, loop rules, reply-all, threading, compose); no I/O."""
