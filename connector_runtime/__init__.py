"""Connector runtime: OpenCTI live stream to Sekoia.io IOC collection."""
