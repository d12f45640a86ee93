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
