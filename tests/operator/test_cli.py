"""Command-line usage errors are one readable line."""

from __future__ import annotations

from pathlib import Path

import pytest
from sekoia_intel_operator import cli


def test_defaults() -> None:
    cfg = cli.config_from_args(cli.build_parser().parse_args(["--claims-namespace", "ops"]))
    assert cfg.claims_namespace == "ops" and cfg.namespaces is None and cfg.webhook is None


def test_namespaces_and_image() -> None:
    args = cli.build_parser().parse_args(["-n", "a", "-n", "b", "--runtime-image", "r/i:1"])
    cfg = cli.config_from_args(args)
    assert cfg.namespaces == ["a", "b"] and cfg.runtime_image == "r/i:1"


def test_scope_flags_are_exclusive() -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["-n", "a", "-A"])


def test_webhook_needs_tls_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--webhook", "--metrics-port", "0", "--liveness-port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sekoia-intel-operator: error:") and "\n" not in err
    assert (
        cli.main(
            [
                "--webhook",
                "--webhook-certfile",
                str(tmp_path / "no.pem"),
                "--webhook-keyfile",
                str(tmp_path / "no.key"),
            ]
        )
        == 2
    )
    assert "not found" in capsys.readouterr().err


def test_policy_defaults_are_strict_and_flags_widen_them() -> None:
    cfg = cli.config_from_args(cli.build_parser().parse_args([]))
    lists = cfg.allowlists
    assert lists.opencti_schemes == ("https",) and not lists.allow_loopback
    assert lists.sekoia_urls == ("https://*.sekoia.io", "https://app.*.sekoia.io/api")
    assert lists.runtime_images == () and lists.pod_annotation_keys == () and not lists.allow_affinity
    assert cfg.network_policy is not None and cfg.network_policy.api_server_ports == [443, 6443]

    args = [
        "--allow-opencti-scheme=http",
        "--allow-sekoia-url=http://127.0.0.1:*",
        "--allow-loopback",
        "--allow-runtime-image=registry.corp/sis/*",
        "--allow-toleration-key=gpu",
        "--monitoring-namespace=monitoring",
        "--egress-cidr=10.0.0.0/8",
    ]
    cfg = cli.config_from_args(cli.build_parser().parse_args(args))
    assert cfg.allowlists.opencti_schemes == ("http",) and cfg.allowlists.allow_loopback
    assert cfg.allowlists.sekoia_urls == ("http://127.0.0.1:*",)
    assert cfg.allowlists.runtime_images == ("registry.corp/sis/*",)
    assert cfg.allowlists.toleration_keys == ("gpu",)
    assert cfg.network_policy is not None
    assert cfg.network_policy.monitoring_namespaces == ["monitoring"]
    assert cfg.network_policy.egress_cidrs == ["10.0.0.0/8"]
    assert cli.config_from_args(cli.build_parser().parse_args(["--no-network-policy"])).network_policy is None


@pytest.mark.parametrize(
    "flag", ["--allow-sekoia-url=ftp://x", "--allow-sekoia-url=https://", "--egress-cidr=10.0.0.0/99"]
)
def test_bad_policy_flags_are_one_line(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([flag, "--metrics-port", "0", "--liveness-port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sekoia-intel-operator: error:") and "\n" not in err and flag.split("=")[1] in err


def test_webhook_requires_client_authentication_or_an_explicit_opt_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("tls.crt", "tls.key", "client-ca.crt"):
        (tmp_path / name).write_text("x")
    tls = [
        "--webhook",
        "--webhook-certfile",
        str(tmp_path / "tls.crt"),
        "--webhook-keyfile",
        str(tmp_path / "tls.key"),
    ]
    assert cli.main([*tls, "--metrics-port", "0", "--liveness-port", "0"]) == 2
    err = capsys.readouterr().err
    assert "--webhook-client-cafile" in err and "\n" not in err.strip()

    cfg = cli.config_from_args(
        cli.build_parser().parse_args(
            [
                *tls,
                "--webhook-client-cafile",
                str(tmp_path / "client-ca.crt"),
                "--webhook-client-name",
                "apiserver",
            ]
        )
    )
    assert cfg.webhook is not None
    assert cfg.webhook.client_cafile == str(tmp_path / "client-ca.crt") and cfg.webhook.client_names == [
        "apiserver"
    ]

    open_cfg = cli.config_from_args(
        cli.build_parser().parse_args([*tls, "--webhook-insecure-no-client-auth"])
    )
    assert open_cfg.webhook is not None and open_cfg.webhook.client_cafile is None


def test_self_made_webhook_certificate_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    base = ["--webhook", "--webhook-insecure-no-client-auth", "--claims-namespace", "ops"]
    args = [*base, "--webhook-cert-secret", "tls", "--webhook-service", "svc", "--webhook-inject-ca", "vwc"]
    cfg = cli.config_from_args(cli.build_parser().parse_args(args))
    assert cfg.webhook is not None
    assert (cfg.webhook.cert_secret, cfg.webhook.service, cfg.webhook.ca_injection_config) == (
        "tls",
        "svc",
        "vwc",
    )
    assert cfg.webhook.certfile is None and cfg.webhook.cert_namespace == "ops"
    pem = tmp_path / "c.pem"
    pem.write_text("x")
    for bad, message in (
        (["--webhook-cert-secret", "tls"], "--webhook-service or --webhook-host"),
        (
            [
                "--webhook-cert-secret",
                "tls",
                "--webhook-service",
                "s",
                "--webhook-certfile",
                str(pem),
                "--webhook-keyfile",
                str(pem),
            ],
            "give one",
        ),
        (
            ["--webhook-certfile", str(pem), "--webhook-keyfile", str(pem), "--webhook-inject-ca", "v"],
            "go with --webhook-cert-secret",
        ),
    ):
        with pytest.raises(ValueError, match=message):
            cli.config_from_args(cli.build_parser().parse_args([*base, *bad]))
