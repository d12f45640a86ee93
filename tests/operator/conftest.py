"""The cluster fixtures of test_operator_cluster (operator subprocess, CRD, API handles), shared with
the other cluster test modules of this folder."""

from test_operator_cluster import api, crd, start_operator

__all__ = ["api", "crd", "start_operator"]
