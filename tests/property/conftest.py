"""Hypothesis profiles of the property suite: `ci` (the default) and `deep` (`make fuzz`).

`ci` is derandomized so that a CI failure replays identically on any machine, and stays small
enough for the whole folder to run in well under a minute on two cores. `deep` explores: random
seeds, many more examples, and the example database so that a failure found once is replayed
first on the next run. Select one with HYPOTHESIS_PROFILE (unset means `ci`).

Hypothesis reads the active profile when a test module is decorated, so loading it here (before
the modules of this folder are imported) is what applies it to every test of the folder.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    # Derandomized runs replay the same examples anyway; no database keeps the checkout clean.
    database=None,
    max_examples=200,
    # The ANTLR parser costs milliseconds per pattern and long generated values cost more: a
    # per-example deadline would only measure the machine's load.
    deadline=None,
    # Strategies that build whole Kubernetes objects or nested patterns are slow to draw on a
    # loaded two-core machine; the health check would fail on speed, not on a defect.
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "deep",
    max_examples=3000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
