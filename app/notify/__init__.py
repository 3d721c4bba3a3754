"""Notifications: the WeChat subscribe-message outbox, its delivery, and users' grants."""
