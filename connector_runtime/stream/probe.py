"""Preflight probes of the OpenCTI platform: token accepted, live stream exists and answers.

Plain HTTP (not pycti) so that a probe never registers a connector nor kills its process.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests

from connector_runtime.tls import describe, verify_failure

HEALTH_QUERY = "query healthCheck { about { version } }"


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of one check, for the preflight report."""

    name: str
    ok: bool
    detail: str


def explain_unreachable(url: str, verify: bool | str, timeout: float = 10.0) -> str | None:
    """Why OpenCTI cannot be reached over TLS, when that is the problem (else None).

    No credential is sent: only the handshake matters.
    """
    try:
        requests.get(f"{url}/health", timeout=timeout, verify=verify, allow_redirects=False)
    except requests.RequestException as exc:
        failure = verify_failure(exc)
        if failure:
            return (
                f"{failure} (give the CA of its certificate in spec.opencti.caBundleRef / OPENCTI_CA_BUNDLE)"
            )
    return None


def probe_opencti(
    url: str, token: str, stream_id: str, verify: bool | str, timeout: float = 10.0
) -> list[ProbeResult]:
    """Check the GraphQL API with the token, then open the live stream and close it at once."""
    headers = {"Authorization": f"Bearer {token}"}
    results: list[ProbeResult] = []
    try:
        answer = requests.post(
            f"{url}/graphql", json={"query": HEALTH_QUERY}, headers=headers, timeout=timeout, verify=verify
        )
    except requests.RequestException as exc:
        return [ProbeResult("OpenCTI API", False, f"unreachable at {url}: {describe(exc)}")]
    if answer.status_code in (401, 403):
        return [ProbeResult("OpenCTI API", False, f"token refused (HTTP {answer.status_code})")]
    try:
        body = answer.json()
    except ValueError:
        body = None
    if answer.status_code != 200 or not isinstance(body, dict) or body.get("errors"):
        return [ProbeResult("OpenCTI API", False, f"unexpected answer (HTTP {answer.status_code})")]
    version = ((body.get("data") or {}).get("about") or {}).get("version", "?")
    results.append(ProbeResult("OpenCTI API", True, f"token accepted, platform version {version}"))

    stream_headers = {
        **headers,
        "Accept": "text/event-stream",
        "listen-delete": "true",
        "no-dependencies": "true",
    }
    try:
        with requests.get(
            f"{url}/stream/{stream_id}", headers=stream_headers, stream=True, timeout=timeout, verify=verify
        ) as stream:
            status = stream.status_code
    except requests.RequestException as exc:
        results.append(ProbeResult("OpenCTI live stream", False, f"cannot open: {describe(exc)}"))
        return results
    meaning = {
        200: (True, f"stream {stream_id} is open"),
        401: (False, "token refused by the stream endpoint"),
        403: (False, "token lacks access to the stream"),
        404: (False, f"live stream {stream_id} does not exist"),
        410: (False, f"live stream {stream_id} is stopped"),
    }
    ok, detail = meaning.get(status, (False, f"unexpected answer (HTTP {status})"))
    results.append(ProbeResult("OpenCTI live stream", ok, detail))
    return results
