"""Mutual TLS for the GVR sandbox: a test CA, the server's certificate and a client's, as files.

In production GVR wants a SITHS function certificate; test and production certificates chain to
different root CAs, so a test certificate fails the handshake in production. `foreign_client`
makes exactly that case: a client certificate from another CA.
"""

from __future__ import annotations

import secrets
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12

SERVER_HOSTS = ("127.0.0.1", "localhost")
CLIENT_NAME = "regbridge-gvr-worker.test"
FILES = {
    "ca_cert": "ca.pem",
    "ca_key": "ca.key",
    "server_cert": "server.pem",
    "server_key": "server.key",
    "client_cert": "client.pem",
    "client_key": "client.key",
    "client_p12": "client.p12",
    "client_p12_password": "client.p12.password",
}


@dataclass(frozen=True)
class ClientCertificate:
    """A client certificate and its key (PEM files), and the CA that the server is checked with."""

    cert: Path
    key: Path
    ca_cert: Path

    def ssl_context(self) -> ssl.SSLContext:
        """For httpx (``verify=…``): trusts `ca_cert`, presents this certificate."""
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        context.load_cert_chain(str(self.cert), str(self.key))
        return context


@dataclass(frozen=True)
class GvrCertificates:
    """The PEM (and PKCS#12) files of one test CA; see `FILES` for their names in `directory`.

    ``ca.pem`` the CA (a client verifies the server with it, the server verifies clients with it),
    ``server.pem``/``server.key`` the server (127.0.0.1 and localhost), ``client.pem``/
    ``client.key`` the worker's certificate, ``client.p12`` the same as PKCS#12, encrypted with the
    password in ``client.p12.password``.
    """

    directory: Path
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_p12: Path
    client_p12_password: Path

    @classmethod
    def at(cls, directory: Path | str) -> GvrCertificates:
        """The file paths in `directory` (whether or not they exist)."""
        folder = Path(directory)
        return cls(folder, **{field: folder / name for field, name in FILES.items()})

    @classmethod
    def create(cls, directory: Path | str, hosts: Sequence[str] = SERVER_HOSTS) -> GvrCertificates:
        """A new CA, server (for `hosts`) and client certificate in `directory`; overwritten."""
        certs = cls.at(directory)
        certs.directory.mkdir(parents=True, exist_ok=True)
        (certs.directory / ".gitignore").write_text("# test keys: never committed\n*\n")
        ca = trustme.CA(organization_name="regbridge GVR sandbox test CA")
        ca.cert_pem.write_to_path(str(certs.ca_cert))
        ca.private_key_pem.write_to_path(str(certs.ca_key))
        server = ca.issue_cert(*hosts, common_name="gvr-sandbox")
        server.cert_chain_pems[0].write_to_path(str(certs.server_cert))
        for blob in server.cert_chain_pems[1:]:
            blob.write_to_path(str(certs.server_cert), append=True)
        server.private_key_pem.write_to_path(str(certs.server_key))
        _write_client(ca, certs.client_cert, certs.client_key)
        certs.write_pkcs12()
        for private in (certs.ca_key, certs.server_key, certs.client_key, certs.client_p12):
            private.chmod(0o600)
        return certs

    @classmethod
    def ensure(cls, directory: Path | str, hosts: Sequence[str] = SERVER_HOSTS) -> GvrCertificates:
        """The certificates in `directory` if all are there (a worker keeps working), else new.

        Reused certificates keep the server hosts they were made for.
        """
        certs = cls.at(directory)
        return certs if certs.complete() else cls.create(directory, hosts)

    def complete(self) -> bool:
        return all(getattr(self, field).is_file() for field in FILES)

    @property
    def client(self) -> ClientCertificate:
        return ClientCertificate(self.client_cert, self.client_key, self.ca_cert)

    def client_ssl_context(self) -> ssl.SSLContext:
        """What a worker uses: trusts the sandbox's CA, presents the client certificate."""
        return self.client.ssl_context()

    def write_pkcs12(self) -> None:
        """client.p12 from client.pem + client.key, with a fresh password in client.p12.password."""
        password = secrets.token_urlsafe(18)
        key = serialization.load_pem_private_key(self.client_key.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(self.client_cert.read_bytes())
        ca = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        bundle = pkcs12.serialize_key_and_certificates(
            CLIENT_NAME.encode(),
            _pkcs12_key(key),
            cert,
            [ca],
            serialization.BestAvailableEncryption(password.encode()),
        )
        self.client_p12_password.write_text(password + "\n")
        self.client_p12_password.chmod(0o600)
        self.client_p12.write_bytes(bundle)

    def issue_client(self, directory: Path | str, name: str = "client") -> ClientCertificate:
        """Another client certificate from this CA: ``<name>.pem`` and ``<name>.key``."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA.from_pem(self.ca_cert.read_bytes(), self.ca_key.read_bytes())
        cert, key = folder / f"{name}.pem", folder / f"{name}.key"
        _write_client(ca, cert, key)
        return ClientCertificate(cert, key, self.ca_cert)

    def foreign_client(self, directory: Path | str, name: str = "foreign") -> ClientCertificate:
        """A client certificate from ANOTHER CA (a test certificate against production).

        ``<name>-ca.pem`` is that other CA; the returned context still trusts this sandbox's CA,
        so only the server's check of the client fails.
        """
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        other = trustme.CA(organization_name="another CA (not the sandbox's)")
        other.cert_pem.write_to_path(str(folder / f"{name}-ca.pem"))
        cert, key = folder / f"{name}.pem", folder / f"{name}.key"
        _write_client(other, cert, key)
        return ClientCertificate(cert, key, self.ca_cert)


def _write_client(ca: trustme.CA, cert: Path, key: Path) -> None:
    client = ca.issue_cert(CLIENT_NAME, common_name=CLIENT_NAME)
    client.cert_chain_pems[0].write_to_path(str(cert))
    client.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)


def _pkcs12_key(key: PrivateKeyTypes) -> pkcs12.PKCS12PrivateKeyTypes:
    storable = (
        rsa.RSAPrivateKey,
        dsa.DSAPrivateKey,
        ec.EllipticCurvePrivateKey,
        ed25519.Ed25519PrivateKey,
        ed448.Ed448PrivateKey,
    )
    if not isinstance(key, storable):
        raise TypeError(f"a {type(key).__name__} cannot be stored in PKCS#12")
    return key
