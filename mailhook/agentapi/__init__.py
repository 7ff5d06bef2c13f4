"""Agent primitives for developers' own agents, over REST and MCP (docs/agent-api.md).

Per-mailbox API keys (:mod:`.keys`), the audit trail (:mod:`.audit`), the agent inbox of
``answered_by = api`` mailboxes (:mod:`.inbox`), outgoing mail under graduated trust
(:mod:`.outgoing`) and the one service both transports call (:mod:`.primitives`).
"""
