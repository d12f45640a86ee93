"""Certificates and keys for the local control plane (a throw-away PKI, made per cluster)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pki:
    """Paths of every PEM file the components read."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_public: Path
    sa_private: Path
    #: What kube-apiserver presents to admission webhooks (given by its admission configuration).
    webhook_client_cert: Path
    webhook_client_key: Path


#: Common name of the API server's admission-webhook client certificate.
WEBHOOK_CLIENT_NAME = "sekoia-intel-sync-webhook-client"


def _name(common_name: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _issue(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server_names: tuple[str, ...] = (),
    client: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        # Python 3.13's default TLS context verifies strictly (VERIFY_X509_STRICT) and rejects a
        # chain without key identifiers ("Missing Authority Key Identifier"): the runtime image's
        # Python refused the API server until these were added, as real cluster PKIs have them.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    if server_names:
        sans: list[x509.GeneralName] = []
        for name in server_names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    usages = []
    if server_names:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_pki(directory: Path, extra_server_names: tuple[str, ...] = ()) -> Pki:
    """Create a CA, the API server's serving certificate, an admin client certificate
    (group ``system:masters``), the API server's webhook client certificate and the service-account
    signing key pair in ``directory``. ``extra_server_names`` are further names (or addresses) the
    API server is reached at (the real node's Pod gateway)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("sekoia-intel-sync-test-ca")
    ca_cert = _issue(ca_name, ca_key, ca_name, ca_key, ca=True)

    serving_key = ec.generate_private_key(ec.SECP256R1())
    serving_cert = _issue(
        _name("kube-apiserver"),
        serving_key,
        ca_name,
        ca_key,
        server_names=(
            "127.0.0.1",
            "localhost",
            "10.0.0.1",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            *extra_server_names,
        ),
    )
    admin_key = ec.generate_private_key(ec.SECP256R1())
    admin_cert = _issue(_name("admin", "system:masters"), admin_key, ca_name, ca_key, client=True)
    webhook_client_key = ec.generate_private_key(ec.SECP256R1())
    webhook_client_cert = _issue(_name(WEBHOOK_CLIENT_NAME), webhook_client_key, ca_name, ca_key, client=True)
    # RSA because every Kubernetes release accepts it for service-account tokens.
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    pki = Pki(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        sa_public=directory / "sa.pub",
        sa_private=directory / "sa.key",
        webhook_client_cert=directory / "webhook-client.crt",
        webhook_client_key=directory / "webhook-client.key",
    )
    _write_cert(pki.webhook_client_cert, webhook_client_cert)
    _write_key(pki.webhook_client_key, webhook_client_key)
    _write_cert(pki.ca_cert, ca_cert)
    _write_key(pki.ca_key, ca_key)
    _write_cert(pki.serving_cert, serving_cert)
    _write_key(pki.serving_key, serving_key)
    _write_cert(pki.admin_cert, admin_cert)
    _write_key(pki.admin_key, admin_key)
    _write_key(pki.sa_private, sa_key)
    pki.sa_public.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki


def issue_client(pki: Pki, directory: Path, common_name: str, org: str | None = None) -> tuple[Path, Path]:
    """A client certificate signed by the cluster's CA (user ``common_name``, group ``org``):
    (cert.pem, key.pem) in ``directory``, e.g. a kubelet's ``system:node:<name>``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _issue(_name(common_name, org), key, ca_cert.subject, ca_key, client=True)
    stem = common_name.replace(":", "-")
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    _write_cert(cert_path, cert)
    _write_key(key_path, key)
    return cert_path, key_path


def make_self_signed(
    directory: Path, names: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> tuple[Path, Path]:
    """A self-signed serving certificate for ``names`` and its key: (cert.pem, key.pem).

    It is its own CA, so the certificate file doubles as the CA bundle that makes it trusted.
    """
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(names[0], "sekoia-intel-sync test server")
    cert = _issue(name, key, name, key, ca=True, server_names=names)
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    _write_cert(cert_path, cert)
    _write_key(key_path, key)
    return cert_path, key_path
