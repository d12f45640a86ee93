"""Client of the admin API, to drive an emulator running in another process."""

from __future__ import annotations

from typing import Any

import requests


class RemoteEmulator:
    """Thin wrapper over /_emulator/ of an emulator at `base_url`."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()
        self._session.trust_env = False  # the emulator is local: never go through a proxy
        self._timeout = timeout

    def _call(self, method: str, name: str, body: dict[str, Any] | None = None, **params: str) -> Any:
        response = self._session.request(
            method,
            f"{self.base_url}/_emulator/{name}",
            json=body,
            params=params or None,
            timeout=self._timeout,
        )
        if response.status_code >= 400:
            raise RuntimeError(f"admin call {method} {name} failed: {response.status_code} {response.text}")
        return response.json()

    def summary(self) -> dict[str, Any]:
        """Counts, options, faults and storm."""
        return self._call("GET", "summary")

    def indicators(self, collection: str | None = None) -> list[dict[str, Any]]:
        """Every indicator of a collection (default: the first one)."""
        params: dict[str, str] = {"collection": collection} if collection else {}
        collections = self._call("GET", "state", None, **params)["collections"]
        return next(iter(collections.values()), [])

    def active_values(self, collection: str | None = None) -> set[str]:
        """Values of the non-revoked indicators of a collection."""
        return {i["value"] for i in self.indicators(collection) if not i["revoked"]}

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """Logged API requests after sequence number `since`."""
        return self._call("GET", "requests", since=str(since))["requests"]

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        """Change faults; `storm={...}` starts a storm, `storm=None` ends it."""
        return self._call("POST", "faults", changes)

    def set_options(self, **changes: Any) -> dict[str, Any]:
        """Change behaviour switches."""
        return self._call("POST", "options", changes)

    def add_api_key(self, key: str, permissions: list[str] | None = None) -> None:
        """Accept a new key."""
        self._call("POST", "api-keys", {"key": key, "permissions": permissions or ["all"]})

    def remove_api_key(self, key: str) -> bool:
        """Stop accepting a key; False when the emulator did not know it."""
        return bool(self._call("DELETE", f"api-keys/{key}").get("removed"))

    def revoke_all(self, collection: str | None = None) -> int:
        """Revoke every active indicator of a collection (by hand, behind the runtime's back)."""
        body = {"collection": collection} if collection else {}
        return int(self._call("POST", "revoke-all", body).get("revoked", 0))

    def reset(self) -> None:
        """Back to the initial state."""
        self._call("POST", "reset")

    def close(self) -> None:
        self._session.close()
