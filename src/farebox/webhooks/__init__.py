"""Outgoing notifications: signed webhooks, Slack messages and e-mail, delivered from the ledger's outbox."""
