"""Kept for the test modules: the certificates now live in flask_smtp_accounts.testing."""

from flask_smtp_accounts.testing.certs import Certs, make_certs  # noqa: F401
