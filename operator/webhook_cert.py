"""The webhook's own CA and serving certificate, kept by the operator (the chart's default mode).

Why the operator and not the chart: a chart that generates keys renders differently every time, and
GitOps tools render with `helm template` (no `lookup`), so the application never settles. Here the
chart renders only fixed objects; the operator keeps the key material in one Secret of its own
namespace, which every replica reads, and puts the CA into the chart's ValidatingWebhookConfiguration.

The decisions (what to issue, when to renew) are pure functions of the stored data, the wanted host
names and the time; `ensure_secret` adds the API calls. Replicas never fight: creation is
create-or-get (the loser of a 409 reads the winner's Secret) and renewal is an update with the read
resourceVersion (the loser of a 409 reads again and finds it renewed).
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

CA_VALIDITY = dt.timedelta(days=5 * 365)
SERVING_VALIDITY = dt.timedelta(days=365)
#: A serving certificate is renewed when less than this is left.
SERVING_RENEW_BEFORE = dt.timedelta(days=90)
#: The CA is renewed when it would expire before a serving certificate issued now; the old CA stays
#: in the bundle until it expires, so replicas still serving a certificate it signed are trusted.
CA_RENEW_BEFORE = SERVING_VALIDITY + SERVING_RENEW_BEFORE
# Backdating absorbs clock skew between this replica and the API server.
BACKDATE = dt.timedelta(hours=1)

KEY_CA_BUNDLE, KEY_CA_KEY, KEY_CERT, KEY_KEY = "ca.crt", "ca.key", "tls.crt", "tls.key"
MANAGED_BY_LABEL = ("app.kubernetes.io/managed-by", "sekoia-intel-operator")


@dataclass(frozen=True)
class CertBundle:
    """PEM material as stored in the Secret. `ca_bundle` holds the current CA first, then the previous
    one while it is still valid; `ca_key` is the current CA's key."""

    ca_bundle: bytes
    ca_key: bytes
    cert: bytes
    key: bytes

    def to_data(self) -> dict[str, str]:
        """The Secret's `data` (base64)."""
        return {
            k: base64.b64encode(v).decode()
            for k, v in (
                (KEY_CA_BUNDLE, self.ca_bundle),
                (KEY_CA_KEY, self.ca_key),
                (KEY_CERT, self.cert),
                (KEY_KEY, self.key),
            )
        }

    @classmethod
    def from_data(cls, data: dict[str, str] | None) -> CertBundle | None:
        """From a Secret's `data`; None when a key is missing or not base64."""
        data = data or {}
        try:
            raw = {
                k: base64.b64decode(data[k], validate=True)
                for k in (KEY_CA_BUNDLE, KEY_CA_KEY, KEY_CERT, KEY_KEY)
            }
        except (KeyError, ValueError):
            return None
        return cls(raw[KEY_CA_BUNDLE], raw[KEY_CA_KEY], raw[KEY_CERT], raw[KEY_KEY])


def service_hosts(service: str, namespace: str) -> list[str]:
    """The names under which the API server may reach a webhook behind this Service."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def _san(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _issue_ca(common_name: str, now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _issue_serving(
    hosts: Sequence[str], ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    not_after = min(now + SERVING_VALIDITY, ca.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_san(hosts), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def issue(
    hosts: Sequence[str], now: dt.datetime, *, ca_name: str = "sekoia-intel-sync-webhook-ca"
) -> CertBundle:
    """A new CA and a serving certificate for `hosts` (DNS names or IP addresses)."""
    if not hosts:
        raise ValueError("the webhook certificate needs at least one host name")
    ca, ca_key = _issue_ca(ca_name, now)
    cert, key = _issue_serving(hosts, ca, ca_key, now)
    return CertBundle(_pem(ca), _key_pem(ca_key), _pem(cert), _key_pem(key))


def renewal_reason(bundle: CertBundle | None, hosts: Sequence[str], now: dt.datetime) -> str | None:
    """Why the stored material must be replaced (None: keep it). Anything unreadable is replaced."""
    if bundle is None:
        return "the Secret lacks ca.crt, ca.key, tls.crt or tls.key"
    try:
        cas = x509.load_pem_x509_certificates(bundle.ca_bundle)
        ca_key = serialization.load_pem_private_key(bundle.ca_key, None)
        cert = x509.load_pem_x509_certificate(bundle.cert)
        key = serialization.load_pem_private_key(bundle.key, None)
    except ValueError:
        return "the Secret holds no readable certificate or key"
    ca = cas[0]
    if ca.public_key() != ca_key.public_key() or cert.public_key() != key.public_key():
        return "a certificate does not match its key"
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return "the serving certificate was not issued by the current CA"
    if ca.not_valid_after_utc - now < CA_RENEW_BEFORE:
        return f"the CA expires on {ca.not_valid_after_utc:%Y-%m-%d}"
    if cert.not_valid_after_utc - now < SERVING_RENEW_BEFORE:
        return f"the serving certificate expires on {cert.not_valid_after_utc:%Y-%m-%d}"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "the serving certificate has no subjectAltName"
    if set(san) != set(_san(hosts)):
        return "the serving certificate does not name the webhook's current hosts"
    return None


def renew(bundle: CertBundle | None, hosts: Sequence[str], now: dt.datetime) -> CertBundle:
    """New material replacing `bundle`: a new serving certificate from the current CA while the CA has
    enough time left, else a new CA too, with the old CA kept in the bundle until it expires."""
    try:
        assert bundle is not None
        cas = x509.load_pem_x509_certificates(bundle.ca_bundle)
        ca_key = serialization.load_pem_private_key(bundle.ca_key, None)
        usable = (
            isinstance(ca_key, ec.EllipticCurvePrivateKey)
            and cas[0].public_key() == ca_key.public_key()
            and cas[0].not_valid_after_utc - now >= CA_RENEW_BEFORE
        )
    except (AssertionError, ValueError):
        return issue(hosts, now)
    if usable:
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        cert, key = _issue_serving(hosts, cas[0], ca_key, now)
        return CertBundle(bundle.ca_bundle, bundle.ca_key, _pem(cert), _key_pem(key))
    fresh = issue(hosts, now)
    still_valid = [c for c in cas if c.not_valid_after_utc > now]
    return CertBundle(
        fresh.ca_bundle + b"".join(_pem(c) for c in still_valid), fresh.ca_key, fresh.cert, fresh.key
    )


# --------------------------------------------------------------------------------------- API calls
def _status(exc: BaseException) -> int | None:
    return getattr(exc, "status", None)


def _secret_body(
    name: str, namespace: str, bundle: CertBundle, owner: dict[str, Any] | None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict([MANAGED_BY_LABEL])}
    if owner:
        metadata["ownerReferences"] = [owner]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "data": bundle.to_data(),
    }


def ensure_secret(
    core: Any,
    namespace: str,
    name: str,
    hosts: Sequence[str],
    *,
    owner: dict[str, Any] | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    attempts: int = 5,
) -> CertBundle:
    """The material every replica serves: read from the Secret, created or renewed when needed.

    `core` is a kubernetes CoreV1Api. Race-free between replicas (see the module docstring); a
    replica that loses a race adopts what the winner stored.
    """
    for _ in range(attempts):
        try:
            secret = core.read_namespaced_secret(name, namespace)
        except Exception as exc:
            if _status(exc) != 404:
                raise
            body = _secret_body(name, namespace, issue(hosts, now()), owner)
            try:
                core.create_namespaced_secret(namespace, body)
            except Exception as exc2:
                if _status(exc2) != 409:
                    raise
                continue  # another replica created it first: use theirs
            log.info("created the webhook certificate in Secret %s/%s", namespace, name)
            stored = CertBundle.from_data(body["data"])
            assert stored is not None
            return stored
        stored = CertBundle.from_data(secret.data)
        reason = renewal_reason(stored, hosts, now())
        if reason is None:
            assert stored is not None
            return stored
        renewed = renew(stored, hosts, now())
        body = _secret_body(name, namespace, renewed, owner)
        body["metadata"]["resourceVersion"] = secret.metadata.resource_version
        try:
            core.replace_namespaced_secret(name, namespace, body)
        except Exception as exc:
            if _status(exc) != 409:
                raise
            continue  # another replica renewed it first: read theirs
        log.info("renewed the webhook certificate in Secret %s/%s: %s", namespace, name, reason)
        return renewed
    raise RuntimeError(f"Secret {namespace}/{name} kept changing while the webhook certificate was checked")


def ensure_ca_bundle(admission: Any, config_name: str, ca_bundle: bytes) -> bool:
    """Put `ca_bundle` into every webhook of the ValidatingWebhookConfiguration (an
    AdmissionregistrationV1Api); True when something changed. Only `clientConfig.caBundle` is written,
    so a GitOps tool that rendered the object without it sees no difference (README)."""
    wanted = base64.b64encode(ca_bundle).decode()
    config = admission.read_validating_webhook_configuration(config_name)
    stale = [w.name for w in config.webhooks or [] if w.client_config.ca_bundle != wanted]
    if not stale:
        return False
    patch = {"webhooks": [{"name": n, "clientConfig": {"caBundle": wanted}} for n in stale]}
    admission.patch_validating_webhook_configuration(config_name, patch)
    log.info("set the CA bundle of ValidatingWebhookConfiguration %s", config_name)
    return True


def write_files(bundle: CertBundle, directory: Path) -> bool:
    """Write tls.crt and tls.key (owner-only) atomically; True when they changed. kopf's webhook
    server re-reads them and restarts its listener when they change."""
    changed = False
    for fname, content in ((KEY_CERT, bundle.cert), (KEY_KEY, bundle.key)):
        path = directory / fname
        if path.exists() and path.read_bytes() == content:
            continue
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{fname}.")
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        os.replace(tmp, path)
        changed = True
    return changed


@dataclass
class CertKeeper:
    """Keeps the served files, the Secret and the webhook configuration's CA in line, at start and
    then every `interval` seconds in a thread (renewal happens months before expiry, so an hourly
    check is plenty)."""

    core: Any
    admission: Any
    namespace: str
    secret_name: str
    hosts: Sequence[str]
    directory: Path
    config_name: str | None = None
    owner: dict[str, Any] | None = None
    interval: float = 3600.0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def certfile(self) -> Path:
        return self.directory / KEY_CERT

    @property
    def keyfile(self) -> Path:
        return self.directory / KEY_KEY

    def sync(self) -> CertBundle:
        """One pass: Secret, files, CA bundle."""
        bundle = ensure_secret(self.core, self.namespace, self.secret_name, self.hosts, owner=self.owner)
        write_files(bundle, self.directory)
        if self.config_name:
            ensure_ca_bundle(self.admission, self.config_name, bundle.ca_bundle)
        return bundle

    def start(self) -> CertKeeper:
        """Run `sync` periodically in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="webhook-cert", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End the thread."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync()
            except Exception as exc:  # retried at the next interval; the current files stay served
                log.warning("checking the webhook certificate failed: %s: %s", type(exc).__name__, exc)
