"""`make demo`: the whole system on one machine, from a real control plane to a Sekoia collection.

Modules, one job each: ``dataset`` (what the collection must hold), ``emulators`` (the OpenCTI and
Sekoia emulator processes), ``stack`` (control plane, CRD, operator, and stopping every process),
``node`` (the real node when this machine can run one, else why not), ``nodepod`` (the runtime Pod
the real node runs, seen through the API and from the host), ``kubelet`` (the local stand-in that runs
the operator's Pod template where no real node can run), ``display`` (progress bar
and printed tables), ``scenario`` (the story, step by step) and ``__main__`` (command line, signals,
exit codes).
"""
