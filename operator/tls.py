"""TLS settings of the runtime, from the spec: environment, CA bundle volumes, and the verdict the
TLSVerified condition reports. Pure.

Certificates are verified unless the resource waives it; a private CA is mounted from the
ConfigMap or Secret key the resource names, never copied into the Deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .spec import CABundleRef, SyncSpec

CA_MOUNT_ROOT = "/etc/sekoia-intel-sync/ca"
CA_FILE = "ca.crt"

# side -> (field path in the spec, runtime variables: verify flag, CA bundle path)
_SIDES = {
    "opencti": ("spec.opencti", "OPENCTI_SSL_VERIFY", "OPENCTI_CA_BUNDLE"),
    "sekoia": ("spec.sekoia", "SEKOIA_INTEL_SSL_VERIFY", "SEKOIA_INTEL_CA_BUNDLE"),
}


@dataclass(frozen=True)
class TLSVerdict:
    """Which servers' certificates go unverified (field paths), and which are checked against a
    CA bundle from the resource (descriptions)."""

    waived: tuple[str, ...]
    ca_bundles: tuple[str, ...]

    @property
    def verified(self) -> bool:
        """True when every certificate is verified."""
        return not self.waived


def _sides(spec: SyncSpec) -> list[tuple[str, Any]]:
    return [("opencti", spec.opencti), ("sekoia", spec.sekoia)]


def _describe(ref: CABundleRef) -> str:
    if ref.config_map_key_ref is not None:
        return f"ConfigMap {ref.config_map_key_ref.name!r} key {ref.config_map_key_ref.key!r}"
    assert ref.secret_key_ref is not None
    return f"Secret {ref.secret_key_ref.name!r} key {ref.secret_key_ref.key!r}"


def verdict(spec: SyncSpec) -> TLSVerdict:
    """What the TLSVerified condition says about this spec."""
    waived = tuple(
        f"{_SIDES[side][0]}.insecureSkipTLSVerify" for side, s in _sides(spec) if s.insecure_skip_tls_verify
    )
    bundles = tuple(
        f"{_SIDES[side][0]}: {_describe(s.ca_bundle_ref)}"
        for side, s in _sides(spec)
        if s.ca_bundle_ref is not None
    )
    return TLSVerdict(waived, bundles)


def _volume_name(side: str) -> str:
    return f"{side}-ca"


def tls_env(spec: SyncSpec) -> list[dict[str, Any]]:
    """Runtime variables: both verify flags always set (the runtime's own default is to verify, but
    an explicit value also overrides a config.yml baked into a custom image), CA paths when given."""
    env: list[dict[str, Any]] = []
    for side, settings in _sides(spec):
        _, verify_var, bundle_var = _SIDES[side]
        env.append({"name": verify_var, "value": "false" if settings.insecure_skip_tls_verify else "true"})
        if settings.ca_bundle_ref is not None:
            env.append({"name": bundle_var, "value": f"{CA_MOUNT_ROOT}/{side}/{CA_FILE}"})
    return env


def tls_volumes(spec: SyncSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(Pod volumes, container volume mounts) that put each referenced CA bundle at the path
    :func:`tls_env` announces. Only the referenced key is projected, read-only."""
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for side, settings in _sides(spec):
        ref = settings.ca_bundle_ref
        if ref is None:
            continue
        name = _volume_name(side)
        if ref.config_map_key_ref is not None:
            source = ref.config_map_key_ref
            volumes.append(
                {
                    "name": name,
                    "configMap": {
                        "name": source.name,
                        "items": [{"key": source.key, "path": CA_FILE}],
                        "defaultMode": 0o444,
                    },
                }
            )
        else:
            assert ref.secret_key_ref is not None
            source = ref.secret_key_ref
            volumes.append(
                {
                    "name": name,
                    "secret": {
                        "secretName": source.name,
                        "items": [{"key": source.key, "path": CA_FILE}],
                        "defaultMode": 0o444,
                    },
                }
            )
        mounts.append({"name": name, "mountPath": f"{CA_MOUNT_ROOT}/{side}", "readOnly": True})
    return volumes, mounts
