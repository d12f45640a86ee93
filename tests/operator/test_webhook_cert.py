"""The webhook certificate the operator keeps itself: what it issues, and when and how it renews."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress

from cryptography import x509
from sekoia_intel_operator import webhook_cert as wc

NOW = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
HOSTS = [*wc.service_hosts("sis-webhook", "ops"), "127.0.0.1"]


def chain(bundle: wc.CertBundle) -> tuple[list[x509.Certificate], x509.Certificate]:
    return x509.load_pem_x509_certificates(bundle.ca_bundle), x509.load_pem_x509_certificate(bundle.cert)


def test_a_new_certificate_names_the_service_and_is_signed_by_its_own_ca() -> None:
    bundle = wc.issue(HOSTS, NOW)
    cas, cert = chain(bundle)
    assert len(cas) == 1
    cert.verify_directly_issued_by(cas[0])
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [
        "sis-webhook",
        "sis-webhook.ops",
        "sis-webhook.ops.svc",
        "sis-webhook.ops.svc.cluster.local",
    ]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert cas[0].extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert wc.renewal_reason(bundle, HOSTS, NOW) is None
    # Round trip through a Secret's data.
    assert wc.CertBundle.from_data(bundle.to_data()) == bundle


def test_the_serving_certificate_is_renewed_before_it_expires_under_the_same_ca() -> None:
    bundle = wc.issue(HOSTS, NOW)
    _, cert = chain(bundle)
    still_fine = cert.not_valid_after_utc - wc.SERVING_RENEW_BEFORE - dt.timedelta(days=1)
    assert wc.renewal_reason(bundle, HOSTS, still_fine) is None
    due = cert.not_valid_after_utc - wc.SERVING_RENEW_BEFORE + dt.timedelta(days=1)
    reason = wc.renewal_reason(bundle, HOSTS, due)
    assert reason is not None and "serving certificate expires" in reason
    renewed = wc.renew(bundle, HOSTS, due)
    # Same CA (the caBundle the API server holds stays right), new key and certificate.
    assert renewed.ca_bundle == bundle.ca_bundle and renewed.ca_key == bundle.ca_key
    assert renewed.key != bundle.key
    cas, new_cert = chain(renewed)
    new_cert.verify_directly_issued_by(cas[0])
    assert new_cert.not_valid_after_utc > cert.not_valid_after_utc
    assert wc.renewal_reason(renewed, HOSTS, due) is None


def test_a_ca_near_its_end_is_replaced_and_the_old_one_stays_trusted_until_it_expires() -> None:
    bundle = wc.issue(HOSTS, NOW)
    (old_ca,), _ = chain(bundle)
    due = old_ca.not_valid_after_utc - wc.CA_RENEW_BEFORE + dt.timedelta(days=1)
    reason = wc.renewal_reason(bundle, HOSTS, due)
    assert reason is not None and "CA expires" in reason
    renewed = wc.renew(bundle, HOSTS, due)
    cas, cert = chain(renewed)
    # New CA first (it signs), the old one kept: a replica still serving the old certificate is trusted.
    assert len(cas) == 2 and cas[1] == old_ca and cas[0] != old_ca
    cert.verify_directly_issued_by(cas[0])
    assert wc.renewal_reason(renewed, HOSTS, due) is None
    # Once the old CA has expired, the next CA renewal drops it.
    later = cas[0].not_valid_after_utc - wc.CA_RENEW_BEFORE + dt.timedelta(days=1)
    assert later > old_ca.not_valid_after_utc
    again = wc.renew(renewed, HOSTS, later)
    assert len(chain(again)[0]) == 2 and old_ca not in chain(again)[0]


def test_other_hosts_or_broken_material_mean_a_new_certificate() -> None:
    bundle = wc.issue(HOSTS, NOW)
    reason = wc.renewal_reason(bundle, wc.service_hosts("other", "ops"), NOW)
    assert reason is not None and "hosts" in reason
    assert wc.renewal_reason(None, HOSTS, NOW) is not None
    assert wc.CertBundle.from_data({"ca.crt": "x"}) is None
    assert wc.CertBundle.from_data({**bundle.to_data(), "tls.key": "not base64!"}) is None
    garbage = wc.CertBundle(b"junk", bundle.ca_key, bundle.cert, bundle.key)
    assert "readable" in (wc.renewal_reason(garbage, HOSTS, NOW) or "")
    other = wc.issue(HOSTS, NOW)
    swapped_key = wc.CertBundle(bundle.ca_bundle, bundle.ca_key, bundle.cert, other.key)
    assert "does not match" in (wc.renewal_reason(swapped_key, HOSTS, NOW) or "")
    foreign = wc.CertBundle(bundle.ca_bundle, bundle.ca_key, other.cert, other.key)
    assert "not issued by the current CA" in (wc.renewal_reason(foreign, HOSTS, NOW) or "")
    # Broken material is replaced by a whole new set.
    fresh = wc.renew(garbage, HOSTS, NOW)
    assert wc.renewal_reason(fresh, HOSTS, NOW) is None


def test_secret_data_keeps_the_ca_key_apart_from_what_the_api_server_gets() -> None:
    data = wc.issue(HOSTS, NOW).to_data()
    assert set(data) == {"ca.crt", "ca.key", "tls.crt", "tls.key"}
    assert b"PRIVATE KEY" not in base64.b64decode(data["ca.crt"])
