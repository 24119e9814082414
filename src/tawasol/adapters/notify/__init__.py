"""Channels that carry notices to subscribers and alerts to the operator (email via SMTP)."""
