"""Notification: tells workers, partners and stakeholders what happened, once. See docs/notification.md."""
