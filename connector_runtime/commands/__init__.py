"""Sub-commands of the `connector-runtime` console script, one module each."""
