"""The IMAP door: external mailboxes (Gmail, Fastmail, any IMAP server) watched with IDLE or
polling, their new mail handed to the spool, with a cursor that moves only after the spool commit.

- ``client``: a small typed IMAP client over aioimaplib (implicit TLS only).
- ``accounts``: an external mailbox's servers and opened credentials.
- ``state``: the cursor (UIDVALIDITY + last UID), status on login failure/success, UIDs of jobs.
- ``leases``: which node watches which account (database leases, SQLite and PostgreSQL).
- ``sync``: fetch the messages past the cursor into the spool.
- ``watcher``: one task per account: connect, sync, IDLE or poll, back off.
- ``door``: starts and stops the watchers of the accounts this node leased.
- ``store``: APPEND to Sent/Drafts and STORE flags on the original (issue #4 store operations).

docs/imap.md describes the guarantees.
"""

from mailhook.doors.imap.door import ImapDoor

__all__ = ["ImapDoor"]
