"""Shared pytest fixtures."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# --- SMTP servers ---
from certs import Certs, make_certs
from smtp_servers import LOGIN, PASSWORD, SMTPServer


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """CA, CA-signed, self-signed and wrong-name server certificates (PEM files)."""
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    """Plain SMTP, no AUTH."""
    with SMTPServer() as server:
        yield server


@pytest.fixture
def auth_server() -> Iterator[SMTPServer]:
    """Plain SMTP, AUTH required (``LOGIN``/``PASSWORD``)."""
    with SMTPServer(auth=(LOGIN, PASSWORD)) as server:
        yield server


@pytest.fixture
def starttls_server(certs: Certs) -> Iterator[SMTPServer]:
    """STARTTLS required, then AUTH required; certificate signed by ``certs.ca_cert``."""
    with SMTPServer(
        tls="starttls", cert=(certs.server_cert, certs.server_key), auth=(LOGIN, PASSWORD)
    ) as server:
        yield server


@pytest.fixture
def ssl_server(certs: Certs) -> Iterator[SMTPServer]:
    """Implicit TLS, AUTH required; certificate signed by ``certs.ca_cert``."""
    with SMTPServer(tls="ssl", cert=(certs.server_cert, certs.server_key), auth=(LOGIN, PASSWORD)) as server:
        yield server


@pytest.fixture
def selfsigned_server(certs: Certs) -> Iterator[SMTPServer]:
    """STARTTLS required with a self-signed certificate, AUTH required."""
    with SMTPServer(
        tls="starttls", cert=(certs.selfsigned_cert, certs.selfsigned_key), auth=(LOGIN, PASSWORD)
    ) as server:
        yield server


@pytest.fixture
def make_smtp_server() -> Iterator[Callable[..., SMTPServer]]:
    """Factory ``make_smtp_server(**SMTPServer kwargs)`` returning started servers, stopped at teardown."""
    with contextlib.ExitStack() as stack:

        def make(**kwargs: Any) -> SMTPServer:
            return stack.enter_context(SMTPServer(**kwargs))

        yield make


# --- end SMTP servers ---
