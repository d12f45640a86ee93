"""Local test bed: a real Kubernetes control plane and emulators of the two SaaS APIs."""
