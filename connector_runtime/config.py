"""Runtime configuration: the seed connector's variables, unchanged, plus optional new ones.

Sources, highest priority first (as pycti does it): environment variables, then the seed's
``config.yml`` keys. Every field is named after its environment variable; ``YAML_KEYS`` maps the
seed's YAML paths onto those names. A problem is reported as ONE line naming the variable.
"""

from __future__ import annotations

import os
import re
import unicodedata
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from connector_runtime import redaction
from connector_runtime.guardrail.catalog import PAP_LEVELS, TLP_LEVELS, normalize_name
from connector_runtime.guardrail.policy import DEFAULT_MAX_TLP, MarkingPolicy, Unmarked, parse_list
from connector_runtime.resync import parse_date
from connector_runtime.sekoia.protocol import normalize_base_url, normalize_collection_id

PLACEHOLDER = "ChangeMe"
_USERINFO = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@")

# Seed config.yml path -> environment variable (the field alias).
YAML_KEYS: dict[tuple[str, ...], str] = {
    ("opencti", "url"): "OPENCTI_URL",
    ("opencti", "token"): "OPENCTI_TOKEN",
    ("opencti", "ssl_verify"): "OPENCTI_SSL_VERIFY",
    ("opencti", "ca_bundle"): "OPENCTI_CA_BUNDLE",
    ("connector", "id"): "CONNECTOR_ID",
    ("connector", "name"): "CONNECTOR_NAME",
    ("connector", "scope"): "CONNECTOR_SCOPE",
    ("connector", "log_level"): "CONNECTOR_LOG_LEVEL",
    ("connector", "live_stream_id"): "CONNECTOR_LIVE_STREAM_ID",
    ("connector", "live_stream_listen_delete"): "CONNECTOR_LIVE_STREAM_LISTEN_DELETE",
    ("connector", "live_stream_no_dependencies"): "CONNECTOR_LIVE_STREAM_NO_DEPENDENCIES",
    ("sekoia_intel", "url"): "SEKOIA_INTEL_URL",
    ("sekoia_intel", "apikey"): "SEKOIA_INTEL_APIKEY",
    ("sekoia_intel", "ssl_verify"): "SEKOIA_INTEL_SSL_VERIFY",
    ("sekoia_intel", "ca_bundle"): "SEKOIA_INTEL_CA_BUNDLE",
    ("sekoia_intel", "ioc_collection_uuid"): "SEKOIA_INTEL_IOC_COLLECTION_UUID",
    ("sekoia_intel", "batch_size"): "SEKOIA_INTEL_BATCH_SIZE",
    ("sekoia_intel", "requests_per_second"): "SEKOIA_INTEL_REQUESTS_PER_SECOND",
    ("sekoia_intel", "description_mode"): "SEKOIA_INTEL_DESCRIPTION_MODE",
    ("sekoia_intel", "validity_granularity"): "SEKOIA_INTEL_VALIDITY_GRANULARITY",
    ("sekoia_intel", "max_coarsening"): "SEKOIA_INTEL_MAX_COARSENING",
    ("sekoia_intel", "coarse_validity"): "SEKOIA_INTEL_COARSE_VALIDITY",
    ("sekoia_intel", "markings_max_tlp"): "SEKOIA_INTEL_MARKINGS_MAX_TLP",
    ("sekoia_intel", "markings_max_pap"): "SEKOIA_INTEL_MARKINGS_MAX_PAP",
    ("sekoia_intel", "markings_allowed"): "SEKOIA_INTEL_MARKINGS_ALLOWED",
    ("sekoia_intel", "markings_refused"): "SEKOIA_INTEL_MARKINGS_REFUSED",
    ("sekoia_intel", "markings_unmarked"): "SEKOIA_INTEL_MARKINGS_UNMARKED",
}


class DescriptionMode(StrEnum):
    """What goes into Sekoia's ``description``, a field shared by all values of one request.

    ``stream`` (default) writes one text per runtime (the stream and connector name), so values of
    many indicators share a request: a 500,000-indicator replay needs ~5,000 requests (~17 min at
    5 requests/s). ``indicator-url`` is the seed's behaviour (each indicator's OpenCTI URL): every
    indicator then needs its own request at full fidelity (~28 h for the same replay), unless the
    ``merged`` coarsening level replaces differing descriptions under a backlog (see
    ``Coarsening``). ``none`` sends no description.
    """

    STREAM = "stream"
    INDICATOR_URL = "indicator-url"
    NONE = "none"


class ValidityGranularity(StrEnum):
    """How ``valid_until`` (also shared per request) is rounded UP at full fidelity.

    ``exact`` (default) keeps each indicator's own timestamp whenever the request budget allows;
    under a backlog the coarsening ladder (``Coarsening``) rounds further so that requests stay
    full. A coarser setting here applies even when the budget is idle. Rounding never shortens a
    validity: OpenCTI's expiration manager revokes the indicator when ``valid_until`` passes, and
    the runtime then revokes it in Sekoia. ``none`` sends no ``valid_until`` at all (Sekoia's own
    default applies).
    """

    EXACT = "exact"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    NONE = "none"


class Coarsening(StrEnum):
    """The coarsest level of shared fields the runtime may use to fill requests under a backlog
    (see ``connector_runtime/delivery/coarsening.py``): ``exact`` never coarsens; ``rounded``
    rounds ``valid_until`` up to ``SEKOIA_INTEL_COARSE_VALIDITY``; ``widened`` (plus) gives a
    request the latest ``valid_until`` of its values; ``merged`` (plus, default) unites the kill
    chain phases of values that have some and replaces differing descriptions by the runtime's."""

    EXACT = "exact"
    ROUNDED = "rounded"
    WIDENED = "widened"
    MERGED = "merged"


class RuntimeSettings(BaseSettings):
    """Everything the runtime reads at start-up. Field aliases are the environment variables."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=False, case_sensitive=True)

    opencti_url: str = Field(validation_alias="OPENCTI_URL")
    opencti_token: SecretStr = Field(validation_alias="OPENCTI_TOKEN")
    # Verified unless explicitly waived. The seed defaulted to false; a token sent over unverified
    # TLS is a token anyone on the path can take.
    opencti_ssl_verify: bool = Field(True, validation_alias="OPENCTI_SSL_VERIFY")
    opencti_ca_bundle: Path | None = Field(None, validation_alias="OPENCTI_CA_BUNDLE")
    connector_id: str = Field(validation_alias="CONNECTOR_ID")
    connector_name: str = Field("Sekoia Intel Sync", validation_alias="CONNECTOR_NAME")
    connector_scope: str = Field("indicator", validation_alias="CONNECTOR_SCOPE")
    log_level: str = Field("info", validation_alias="CONNECTOR_LOG_LEVEL")
    live_stream_id: str = Field(validation_alias="CONNECTOR_LIVE_STREAM_ID")
    listen_delete: bool = Field(True, validation_alias="CONNECTOR_LIVE_STREAM_LISTEN_DELETE")
    no_dependencies: bool = Field(True, validation_alias="CONNECTOR_LIVE_STREAM_NO_DEPENDENCIES")

    sekoia_url: str = Field("https://api.sekoia.io", validation_alias="SEKOIA_INTEL_URL")
    sekoia_api_key: SecretStr = Field(validation_alias="SEKOIA_INTEL_APIKEY")
    sekoia_ssl_verify: bool = Field(True, validation_alias="SEKOIA_INTEL_SSL_VERIFY")
    sekoia_ca_bundle: Path | None = Field(None, validation_alias="SEKOIA_INTEL_CA_BUNDLE")
    collection_id: str = Field(validation_alias="SEKOIA_INTEL_IOC_COLLECTION_UUID")

    batch_size: int = Field(100, ge=1, le=100, validation_alias="SEKOIA_INTEL_BATCH_SIZE")
    requests_per_second: float = Field(5.0, gt=0, le=100, validation_alias="SEKOIA_INTEL_REQUESTS_PER_SECOND")
    batch_linger_seconds: float = Field(
        1.0, ge=0, le=60, validation_alias="SEKOIA_INTEL_BATCH_LINGER_SECONDS"
    )
    batch_max_linger_seconds: float = Field(
        30.0, ge=0, le=600, validation_alias="SEKOIA_INTEL_BATCH_MAX_LINGER_SECONDS"
    )
    max_in_flight: int = Field(4, ge=1, le=32, validation_alias="SEKOIA_INTEL_MAX_IN_FLIGHT")
    description_mode: DescriptionMode = Field(
        DescriptionMode.STREAM, validation_alias="SEKOIA_INTEL_DESCRIPTION_MODE"
    )
    validity_granularity: ValidityGranularity = Field(
        ValidityGranularity.EXACT, validation_alias="SEKOIA_INTEL_VALIDITY_GRANULARITY"
    )
    max_coarsening: Coarsening = Field(Coarsening.MERGED, validation_alias="SEKOIA_INTEL_MAX_COARSENING")
    coarse_validity: ValidityGranularity = Field(
        ValidityGranularity.MONTH, validation_alias="SEKOIA_INTEL_COARSE_VALIDITY"
    )
    # The sharing guardrail (connector_runtime/guardrail): the highest TLP/PAP that may leave
    # OpenCTI, marking names or ids always allowed / refused, and what unmarked indicators get.
    markings_max_tlp: str = Field(DEFAULT_MAX_TLP, validation_alias="SEKOIA_INTEL_MARKINGS_MAX_TLP")
    markings_max_pap: str | None = Field(None, validation_alias="SEKOIA_INTEL_MARKINGS_MAX_PAP")
    markings_allowed: list[str] = Field([], validation_alias="SEKOIA_INTEL_MARKINGS_ALLOWED")
    markings_refused: list[str] = Field([], validation_alias="SEKOIA_INTEL_MARKINGS_REFUSED")
    markings_unmarked: Unmarked = Field(Unmarked.PUSH, validation_alias="SEKOIA_INTEL_MARKINGS_UNMARKED")
    # Resync on demand (connector_runtime/resync.py): replay from this date once per token.
    resync_from: str | None = Field(None, validation_alias="RUNTIME_RESYNC_FROM")
    resync_token: str | None = Field(None, max_length=253, validation_alias="RUNTIME_RESYNC_TOKEN")
    idle_budget_share: float = Field(0.5, gt=0, le=1, validation_alias="SEKOIA_INTEL_IDLE_BUDGET_SHARE")
    request_timeout_seconds: float = Field(
        30.0, gt=0, le=300, validation_alias="SEKOIA_INTEL_REQUEST_TIMEOUT_SECONDS"
    )
    max_backoff_seconds: float = Field(
        60.0, gt=0, le=3600, validation_alias="SEKOIA_INTEL_MAX_BACKOFF_SECONDS"
    )
    auth_retry_seconds: float = Field(30.0, gt=0, le=3600, validation_alias="SEKOIA_INTEL_AUTH_RETRY_SECONDS")
    queue_size: int = Field(1000, ge=10, le=1_000_000, validation_alias="RUNTIME_QUEUE_SIZE")
    http_port: int = Field(8080, ge=0, le=65535, validation_alias="RUNTIME_HTTP_PORT")
    state_save_interval_seconds: float = Field(
        5.0, ge=1, le=40, validation_alias="RUNTIME_STATE_SAVE_INTERVAL_SECONDS"
    )
    status_resource: str | None = Field(None, validation_alias="RUNTIME_STATUS_RESOURCE")
    status_interval_seconds: float = Field(
        10.0, ge=1, le=3600, validation_alias="RUNTIME_STATUS_INTERVAL_SECONDS"
    )
    termination_log: Path = Field(Path("/dev/termination-log"), validation_alias="RUNTIME_TERMINATION_LOG")
    shutdown_grace_seconds: float = Field(8.0, ge=1, le=60, validation_alias="RUNTIME_SHUTDOWN_GRACE_SECONDS")

    @field_validator("opencti_url", "sekoia_url", mode="before")
    @classmethod
    def _no_userinfo(cls, value: object) -> object:
        # Checked before anything else, so no later message can quote the URL with its password.
        if isinstance(value, str) and _USERINFO.match(value.strip()):
            raise ValueError(
                "must not contain a user name or password (user:password@host): credentials go in "
                "OPENCTI_TOKEN / SEKOIA_INTEL_APIKEY"
            )
        return value

    @field_validator("opencti_ssl_verify", mode="before")
    @classmethod
    def _seed_verify(cls, value: object) -> object:
        # pycti also accepts a CA file path here; the runtime keeps the two apart so that a typo in
        # a boolean can never silently mean "a file named tru".
        if isinstance(value, str) and value.strip().lower() not in _BOOL_WORDS:
            raise ValueError("must be true or false (give a CA file in OPENCTI_CA_BUNDLE)")
        return value

    @field_validator("opencti_ca_bundle", "sekoia_ca_bundle")
    @classmethod
    def _ca_bundle(cls, value: Path | None) -> Path | None:
        if value is None or not str(value).strip():
            return None
        try:
            text = value.read_text(errors="replace")
        except OSError as exc:
            raise ValueError(
                f"must be a readable file: {value}: {exc.strerror or type(exc).__name__}"
            ) from None
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise ValueError(f"must be a PEM CA bundle: {value} holds no BEGIN CERTIFICATE block")
        return value

    @field_validator("opencti_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith(("http://", "https://")) or len(value) < 10:
            raise ValueError("must be an http(s) URL such as https://opencti.example.com")
        # pycti 6.8 joins paths without stripping (gives //graphql).
        return value.rstrip("/")

    @field_validator("opencti_token", "sekoia_api_key")
    @classmethod
    def _real_secret(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if not raw.strip():
            raise ValueError("must not be empty")
        problem = credential_problem(raw)
        if problem:
            raise ValueError(problem)
        if raw == PLACEHOLDER:
            raise ValueError(f"is still the placeholder {PLACEHOLDER!r}")
        return value

    @field_validator("connector_id", "live_stream_id")
    @classmethod
    def _not_placeholder(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        if value == PLACEHOLDER:
            raise ValueError(f"is still the placeholder {PLACEHOLDER!r}")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.strip().lower()
        if level == "warn":
            level = "warning"
        if level not in {"debug", "info", "warning", "error"}:
            raise ValueError("must be one of debug, info, warning, error")
        return level

    @field_validator("sekoia_url")
    @classmethod
    def _sekoia_url(cls, value: str) -> str:
        return normalize_base_url(value)

    @field_validator("collection_id")
    @classmethod
    def _collection(cls, value: str) -> str:
        return normalize_collection_id(value)

    @field_validator("coarse_validity")
    @classmethod
    def _coarse(cls, value: ValidityGranularity) -> ValidityGranularity:
        if value in (ValidityGranularity.EXACT, ValidityGranularity.NONE):
            raise ValueError("must be one of hour, day, week, month (a rounding, never dropping validity)")
        return value

    @field_validator("resync_from", "resync_token")
    @classmethod
    def _resync(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or not value.strip():
            return None
        if info.field_name == "resync_from":
            parse_date(value)  # ValueError names the expected form
        return value.strip()

    @field_validator("markings_allowed", "markings_refused", mode="before")
    @classmethod
    def _marking_list(cls, value: object) -> object:
        return parse_list(value)

    @field_validator("markings_max_tlp", "markings_max_pap", mode="before")
    @classmethod
    def _empty_level(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("markings_max_tlp")
    @classmethod
    def _max_tlp(cls, value: str | None) -> str:
        name = normalize_name(value or DEFAULT_MAX_TLP)
        if name not in TLP_LEVELS:
            raise ValueError(f"must be one of {', '.join(TLP_LEVELS)}")
        return name

    @field_validator("markings_max_pap")
    @classmethod
    def _max_pap(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name = normalize_name(value)
        if name not in PAP_LEVELS:
            raise ValueError(f"must be one of {', '.join(PAP_LEVELS)}")
        return name

    @field_validator("status_resource")
    @classmethod
    def _resource(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = value.strip().split("/")
        if len(parts) != 2 or not all(parts):
            raise ValueError("must be <namespace>/<name>")
        return value.strip()

    @model_validator(mode="after")
    def _consistent_tls(self) -> RuntimeSettings:
        if self.opencti_ca_bundle is not None and not self.opencti_ssl_verify:
            raise ValueError("OPENCTI_CA_BUNDLE is set but OPENCTI_SSL_VERIFY=false: choose one")
        if self.sekoia_ca_bundle is not None and not self.sekoia_ssl_verify:
            raise ValueError("SEKOIA_INTEL_CA_BUNDLE is set but SEKOIA_INTEL_SSL_VERIFY=false: choose one")
        return self

    @property
    def marking_policy(self) -> MarkingPolicy:
        """The sharing guardrail's policy."""
        return MarkingPolicy.build(
            self.markings_max_tlp,
            self.markings_max_pap,
            self.markings_allowed,
            self.markings_refused,
            self.markings_unmarked,
        )

    @property
    def opencti_verify(self) -> bool | str:
        """What `requests`/pycti take as ``verify`` for OpenCTI: False, True or a CA file path."""
        if not self.opencti_ssl_verify:
            return False
        return str(self.opencti_ca_bundle) if self.opencti_ca_bundle else True

    @property
    def sekoia_verify(self) -> bool | str:
        """What `requests` takes as ``verify`` for Sekoia: False, True or a CA file path."""
        if not self.sekoia_ssl_verify:
            return False
        return str(self.sekoia_ca_bundle) if self.sekoia_ca_bundle else True


_BOOL_WORDS = {"true", "false", "yes", "no", "1", "0", "on", "off", "t", "f", "y", "n"}


def credential_problem(value: str) -> str | None:
    """Why a token/key is unusable as an HTTP header value, or None. Never quotes the value."""
    if value != value.strip():
        return (
            "must not have leading or trailing whitespace (often a line break left by `echo`); "
            "store the value without it (e.g. printf '%s' ... | base64)"
        )
    if any(unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} for c in value):
        return "must not contain control characters (such as a line break); store the value without them"
    if not value.isascii():
        return "must contain only ASCII characters (an HTTP header cannot carry others)"
    return None


class ConfigError(Exception):
    """A setting is missing or invalid; ``str()`` is one line naming the variable."""


def _flatten_yaml(document: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if not isinstance(document, dict):
        return values
    for path, alias in YAML_KEYS.items():
        node: Any = document
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            values[alias] = node
    return values


def _alias_of(field_name: str) -> str:
    alias = RuntimeSettings.model_fields[field_name].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return str(alias or field_name)


def load_settings(config_file: Path | None = None, environ: dict[str, str] | None = None) -> RuntimeSettings:
    """Read the settings from ``environ`` (default: the process environment) and the YAML file.

    The file defaults to ``config.yml`` in the working directory when it exists (the seed's
    layout); ``RUNTIME_CONFIG_FILE`` names another. Raises :class:`ConfigError` with one line.
    """
    env = dict(os.environ if environ is None else environ)
    path = config_file or (Path(env["RUNTIME_CONFIG_FILE"]) if env.get("RUNTIME_CONFIG_FILE") else None)
    if path is None and Path("config.yml").is_file():
        path = Path("config.yml")
    from_file: dict[str, Any] = {}
    if path is not None:
        try:
            from_file = _flatten_yaml(yaml.safe_load(path.read_text()))
        except FileNotFoundError:
            raise ConfigError(f"config file {path}: not found") from None
        except (OSError, yaml.YAMLError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"config file {path}: cannot be read: {first}") from None
    # Only our own variables are considered from the environment, so unrelated ones never matter.
    known = set(YAML_KEYS.values()) | {_alias_of(name) for name in RuntimeSettings.model_fields}
    merged = dict(from_file)
    merged.update({k: v for k, v in env.items() if k in known})
    try:
        return RuntimeSettings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line: the first problem, named by its environment variable, without the bad value."""
    error = exc.errors()[0]
    location = error.get("loc") or ()
    if not location:  # a cross-field check: its message names the variables itself
        message = str(error.get("msg", "settings are inconsistent")).removeprefix("Value error, ")
        return redaction.one_line(message)
    variable = str(location[0])
    if error.get("type") == "missing":
        problem = "is required but not set"
    else:
        message = str(error.get("msg", "is invalid"))
        message = message.removeprefix("Value error, ")
        problem = message if message.startswith(("must", "is ")) else f"is invalid: {message}"
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return redaction.one_line(f"{variable} {problem}{suffix}")
