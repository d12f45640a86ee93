"""`make soak`: one long scenario on the local control plane and both emulators, with faults
injected on a schedule, checked against a model of what the stream must leave in Sekoia."""
