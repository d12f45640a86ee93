"""Reinstall any installed distribution whose files are missing from the virtualenv.

Seen here on fresh installs: kopf 1.45.2's ``kopf/_cogs/helpers/versions.py`` (listed in its
RECORD, shipped in its wheel, and also named by a ``.gitignore`` inside the wheel) was absent after
``pip install -e .[dev]`` in a new virtualenv, so ``import kopf`` failed. A forced reinstall of the
damaged distribution restores it; this check makes set-up repeatable instead of hoping.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path


def incomplete_distributions() -> list[str]:
    """Names (with versions) of installed distributions with a RECORD entry missing on disk."""
    damaged = []
    for dist in metadata.distributions():
        files = dist.files or []
        for file in files:
            if file.suffix == ".py" and not Path(str(dist.locate_file(file))).exists():
                damaged.append(f"{dist.metadata['Name']}=={dist.version}")
                break
    return sorted(set(damaged))


def main() -> int:
    """Repair what is damaged; exit 1 when the repair does not take."""
    damaged = incomplete_distributions()
    if not damaged:
        return 0
    print(f"repairing incomplete installs: {', '.join(damaged)}", file=sys.stderr)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps", *damaged],
        check=True,
    )
    still = incomplete_distributions()
    if still:
        print(f"still incomplete after reinstall: {', '.join(still)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
