# One image for the operator (sekoia-intel-operator) and every connector runtime
# (connector-runtime run): the operator starts runtimes with its own image by default.
#
#   docker build -t sekoia-intel-sync:0.1.0 .
#
# Python 3.13: `make test` runs the non-cluster suite on 3.13 (this image's interpreter, including
# the replay of this file's install steps) as well as everything on 3.11, the oldest supported.
# tests/packaging/test_dockerfile.py lints this file (hadolint) and replays the install steps in a
# clean virtualenv.

ARG PYTHON_IMAGE=python:3.13-slim-bookworm

# ---------------------------------------------------------------------------------------- build
FROM ${PYTHON_IMAGE} AS build

# Compilers only here: a dependency without a wheel for this platform is built in this stage and
# never reaches the final image. Debian package versions are not pinned (DL3008): the archive
# drops old versions, so a pin would break the build rather than make it reproducible; the base
# image tag (or digest, via PYTHON_IMAGE) is the pin.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, read from the project's own metadata (pyproject.toml), so this layer is
# rebuilt only when the dependency list changes, not on every source edit.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# Then the product itself, as a wheel (not editable: the image carries no source tree). The test
# bed (testbed/, a development distribution of its own) is neither copied nor installed.
COPY operator/ operator/
COPY connector_runtime/ connector_runtime/
RUN pip wheel --no-deps --wheel-dir /tmp/wheels . \
    && pip install --no-deps /tmp/wheels/*.whl \
    && sekoia-intel-operator --help >/dev/null \
    && connector-runtime --help >/dev/null

# ---------------------------------------------------------------------------------------- final
FROM ${PYTHON_IMAGE}

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="sekoia-intel-sync" \
      org.opencontainers.image.description="Kubernetes operator and connector runtime syncing OpenCTI live streams into Sekoia.io IOC collections" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/sekoia-intel-sync/sekoia-intel-sync"

# libmagic1: pycti imports python-magic, a ctypes binding that needs the C library at run time.
# A passwd entry for the numeric user keeps getpass/pwd look-ups (kopf's identity) working.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmagic1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 sis \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin sis

COPY --from=build /opt/venv /opt/venv

# Read-only root filesystem: bytecode was compiled at install time, and anything that insists on
# writing (HOME, temporary files) goes to /tmp, an emptyDir in the Pod.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp

# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
WORKDIR /tmp

# The operator by default; runtimes are started with `connector-runtime run` as their command.
ENTRYPOINT []
CMD ["sekoia-intel-operator"]
