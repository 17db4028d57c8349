"""Kept for the test modules: the servers now live in flask_smtp_accounts.testing."""

from flask_smtp_accounts.testing.servers import *  # noqa: F403
from flask_smtp_accounts.testing.servers import LOGIN, PASSWORD, Received, SMTPServer  # noqa: F401
