"""Throw-away TLS material for the test SMTP servers, generated with ``cryptography``."""

from __future__ import annotations

import datetime
import ipaddress
import pathlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["Certs", "make_certs"]

LOCALHOST_NAMES: tuple[x509.GeneralName, ...] = (
    x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
    x509.DNSName("localhost"),
)


@dataclass(frozen=True)
class Certs:
    """Paths of the PEM files written by :func:`make_certs`."""

    ca_cert: pathlib.Path
    server_cert: pathlib.Path
    server_key: pathlib.Path
    selfsigned_cert: pathlib.Path
    selfsigned_key: pathlib.Path
    mismatch_cert: pathlib.Path
    mismatch_key: pathlib.Path


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "flask-smtp-accounts tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _make_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    name = _name("flask-smtp-accounts test CA")
    cert = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_leaf(
    common_name: str,
    names: tuple[x509.GeneralName, ...],
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Server certificate signed by ``issuer`` (a CA), or self-signed when ``issuer`` is None."""
    key = _new_key()
    subject = _name(common_name)
    if issuer is None:
        issuer_name, signing_key = subject, key
    else:
        issuer_name, signing_key = issuer[0].subject, issuer[1]
    cert = (
        _builder(subject, issuer_name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
            critical=False,
        )
        .sign(signing_key, hashes.SHA256())
    )
    return cert, key


def _write_cert(path: pathlib.Path, cert: x509.Certificate) -> pathlib.Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _write_key(path: pathlib.Path, key: ec.EllipticCurvePrivateKey) -> pathlib.Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def make_certs(directory: pathlib.Path) -> Certs:
    """Write a test CA and three server certificates (valid, self-signed, wrong name) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _make_ca()
    server_cert, server_key = _make_leaf("localhost", LOCALHOST_NAMES, ca)
    selfsigned_cert, selfsigned_key = _make_leaf("localhost", LOCALHOST_NAMES, None)
    mismatch_cert, mismatch_key = _make_leaf("wrong.example", (x509.DNSName("wrong.example"),), ca)
    return Certs(
        ca_cert=_write_cert(directory / "ca.pem", ca[0]),
        server_cert=_write_cert(directory / "server.pem", server_cert),
        server_key=_write_key(directory / "server.key", server_key),
        selfsigned_cert=_write_cert(directory / "selfsigned.pem", selfsigned_cert),
        selfsigned_key=_write_key(directory / "selfsigned.key", selfsigned_key),
        mismatch_cert=_write_cert(directory / "mismatch.pem", mismatch_cert),
        mismatch_key=_write_key(directory / "mismatch.key", mismatch_key),
    )
