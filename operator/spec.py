"""Typed view of a SekoiaIntelSync spec.

The CRD schema is the first line of validation (the API server rejects invalid resources and applies
defaults); these models repeat the defaults so that the operator behaves the same on objects stored
before a default was introduced, and so that pure functions get typed input instead of raw dicts.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_SEKOIA_URL = "https://api.sekoia.io"
DEFAULT_OPENCTI_TOKEN_KEY = "opencti-token"
DEFAULT_SEKOIA_API_KEY_KEY = "sekoia-api-key"

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
COLLECTION_ID_RE = re.compile(rf"^(ioc-collection--)?({_UUID})$")
STREAM_ID_RE = re.compile(rf"^(live|{_UUID})$")
_USERINFO_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@")


def _no_userinfo(url: str) -> str:
    # The message must not quote the URL: it goes to status and Events.
    if _USERINFO_RE.match(url.strip()):
        raise ValueError(
            "must not contain a user name or password (user:password@host); credentials belong in the "
            "Secret named by credentialsSecretRef"
        )
    return url


class _Model(BaseModel):
    # Unknown fields are ignored rather than rejected: the API server prunes them anyway, and a newer
    # CRD with extra fields must not break an older operator.
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)


class KeyRef(_Model):
    """One key of a ConfigMap or Secret in the resource's namespace."""

    name: str = Field(min_length=1, max_length=253)
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")


class CABundleRef(_Model):
    """Where the PEM CA bundle that signs a server's certificate is kept (exactly one source)."""

    config_map_key_ref: KeyRef | None = Field(default=None, alias="configMapKeyRef")
    secret_key_ref: KeyRef | None = Field(default=None, alias="secretKeyRef")

    @model_validator(mode="after")
    def _exactly_one(self) -> CABundleRef:
        if (self.config_map_key_ref is None) == (self.secret_key_ref is None):
            raise ValueError("set exactly one of configMapKeyRef and secretKeyRef")
        return self


class _TLSFields(_Model):
    """How the runtime checks a server's certificate: verified by default, optionally against a
    private CA; skipping verification is an explicit, reported choice."""

    insecure_skip_tls_verify: bool = Field(default=False, alias="insecureSkipTLSVerify")
    ca_bundle_ref: CABundleRef | None = Field(default=None, alias="caBundleRef")

    @model_validator(mode="after")
    def _not_both(self) -> _TLSFields:
        if self.insecure_skip_tls_verify and self.ca_bundle_ref is not None:
            raise ValueError("caBundleRef and insecureSkipTLSVerify contradict each other: choose one")
        return self


class OpenCTISpec(_TLSFields):
    """Where the indicators come from."""

    url: str = Field(min_length=1)
    stream_id: str = Field(alias="streamId", pattern=STREAM_ID_RE.pattern)
    listen_delete: bool = Field(default=True, alias="listenDelete")
    no_dependencies: bool = Field(default=True, alias="noDependencies")
    # Resync on demand: replay the stream from this date, once per token.
    resync_from: str | None = Field(default=None, alias="resyncFrom")
    resync_token: str | None = Field(default=None, alias="resyncToken", min_length=1, max_length=253)

    _url = field_validator("url")(_no_userinfo)

    @field_validator("resync_from")
    @classmethod
    def _resync_from(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("must be an RFC 3339 date-time such as 2025-01-31T00:00:00Z") from None
        return value.strip()


class SekoiaSpec(_TLSFields):
    """Where the indicators go."""

    url: str = Field(default=DEFAULT_SEKOIA_URL, min_length=1)
    collection_id: str = Field(alias="collectionId", pattern=COLLECTION_ID_RE.pattern)

    _url = field_validator("url")(_no_userinfo)

    @property
    def collection_uuid(self) -> str:
        """The bare, lower-case collection UUID (whatever form the user wrote)."""
        match = COLLECTION_ID_RE.match(self.collection_id)
        assert match is not None  # guaranteed by the field pattern
        return match.group(2).lower()


class CredentialsSecretRef(_Model):
    """A Secret in the resource's namespace and the keys that hold each credential."""

    name: str = Field(min_length=1)
    opencti_token_key: str = Field(default=DEFAULT_OPENCTI_TOKEN_KEY, alias="openctiTokenKey")
    sekoia_api_key_key: str = Field(default=DEFAULT_SEKOIA_API_KEY_KEY, alias="sekoiaApiKeyKey")

    @property
    def keys(self) -> tuple[str, str]:
        """The referenced keys, OpenCTI token first."""
        return (self.opencti_token_key, self.sekoia_api_key_key)


class ConnectorSpec(_Model):
    """Identity and verbosity of the connector as OpenCTI sees it."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    log_level: Literal["debug", "info", "warning", "error"] = Field(default="info", alias="logLevel")


class LocalObjectReference(_Model):
    """A Secret of the resource's namespace, by name (as in a Pod's imagePullSecrets)."""

    name: str = Field(min_length=1, max_length=253)


class RuntimeSpec(_Model):
    """Overrides for the runtime Pod; raw Kubernetes structures are kept as plain dicts."""

    image: str | None = None
    image_pull_secrets: list[LocalObjectReference] | None = Field(default=None, alias="imagePullSecrets")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None, alias="imagePullPolicy"
    )
    resources: dict[str, dict[str, Any]] | None = None
    node_selector: dict[str, str] | None = Field(default=None, alias="nodeSelector")
    tolerations: list[dict[str, Any]] | None = None
    affinity: dict[str, Any] | None = None
    pod_annotations: dict[str, str] | None = Field(default=None, alias="podAnnotations")
    priority_class_name: str | None = Field(default=None, alias="priorityClassName")


TlpLevel = Literal["TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT", "TLP:RED"]
PapLevel = Literal["PAP:CLEAR", "PAP:GREEN", "PAP:AMBER", "PAP:RED"]
DEFAULT_MAX_TLP: Final = "TLP:AMBER+STRICT"


class MarkingsSpec(_Model):
    """The sharing guardrail: which OpenCTI marking definitions may leave for Sekoia.io."""

    max_tlp: TlpLevel = Field(default=DEFAULT_MAX_TLP, alias="maxTlp")
    max_pap: PapLevel | None = Field(default=None, alias="maxPap")
    allowed: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()
    unmarked: Literal["push", "skip"] = "push"


class PushSpec(_Model):
    """Tuning of the calls to Sekoia.io."""

    batch_size: int = Field(default=100, ge=1, le=100, alias="batchSize")
    requests_per_second: float = Field(default=5.0, gt=0, le=100, alias="requestsPerSecond")
    # How far values' shared fields may be coarsened to keep requests full under a backlog (the
    # runtime's SEKOIA_INTEL_MAX_COARSENING / _VALIDITY_GRANULARITY / _COARSE_VALIDITY).
    max_coarsening: Literal["exact", "rounded", "widened", "merged"] = Field(
        default="merged", alias="maxCoarsening"
    )
    validity_granularity: Literal["exact", "hour", "day", "week", "month", "none"] = Field(
        default="exact", alias="validityGranularity"
    )
    coarse_validity: Literal["hour", "day", "week", "month"] = Field(default="month", alias="coarseValidity")
    markings: MarkingsSpec = Field(default_factory=MarkingsSpec)


class SyncSpec(_Model):
    """The whole `spec` of a SekoiaIntelSync."""

    opencti: OpenCTISpec
    sekoia: SekoiaSpec
    credentials_secret_ref: CredentialsSecretRef = Field(alias="credentialsSecretRef")
    suspend: bool = False
    connector: ConnectorSpec = Field(default_factory=ConnectorSpec)
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec)
    push: PushSpec = Field(default_factory=PushSpec)


class SpecError(ValueError):
    """The spec cannot be used; the message is meant for the resource's status."""


def parse_spec(raw: Mapping[str, Any] | None) -> SyncSpec:
    """Parse a raw `spec` dict, raising SpecError with a short readable message when it is unusable."""
    try:
        return SyncSpec.model_validate(dict(raw or {}))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "spec"
            problems.append(f"spec.{where}: {err['msg']}")
        raise SpecError("; ".join(problems)) from None
