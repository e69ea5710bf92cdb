"""Telling people what happened: the events worth a message, the messages (signed webhooks, Slack, email),
and the notifier that sends them from the database, retrying with backoff."""
