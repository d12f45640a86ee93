"""Sekoia Intel Sync operator: kopf controller for SekoiaIntelSync resources."""
