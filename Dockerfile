# framehook: one image for every role; the command picks it:
#   framehook serve --host 0.0.0.0                    receiver with an embedded worker (default)
#   framehook serve --no-worker --host 0.0.0.0        receiver replica (docker-compose.yml)
#   framehook worker                                  standalone worker
#   framehook db upgrade                              migrations, once before a deploy
#
#   docker build -t framehook .                                   # PostgreSQL and S3 extras
#   docker build --build-arg EXTRAS=postgres,cloud -t framehook . # + GCS and Azure
#   docker run -p 8000:8000 -v framehook-data:/data -e APIFRAME_API_KEY=afk_... framehook
#
# BASE_IMAGE: any image with Python >= 3.11 and its venv module (python3 -m venv) on PATH.
# The official image is the default; tests/system/test_container.py builds on a Debian
# bookworm made with debootstrap, where no image registry is reachable.
ARG BASE_IMAGE=python:3.12-slim

# Stage deps: a virtual environment with the dependencies alone, from pyproject.toml (empty
# packages stand in for the code), so that this, the slow and large layer, is rebuilt only when
# pyproject.toml changes. A venv also suits a base whose system Python refuses pip (PEP 668).
FROM ${BASE_IMAGE} AS deps
# PostgreSQL for scale-out, S3 (and S3-compatible stores: MinIO, R2) for shared asset storage;
# `cloud` adds Google Cloud Storage and Azure Blob Storage.
ARG EXTRAS=postgres,s3
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PATH=/opt/framehook/bin:$PATH
RUN python3 -m venv /opt/framehook
WORKDIR /src
COPY pyproject.toml ./
# The versions are pyproject.toml's ranges (the project ships no lock file).
# hadolint ignore=DL3013
RUN mkdir receiver handlers storage \
    && touch README.md receiver/__init__.py handlers/__init__.py storage/__init__.py \
    && pip install ".[${EXTRAS}]" \
    && pip uninstall --yes framehook \
    && rm -rf README.md receiver handlers storage

# Stage wheel: framehook itself, a wheel of a few hundred KB.
FROM deps AS wheel
COPY README.md ./
COPY receiver ./receiver
COPY handlers ./handlers
COPY storage ./storage
RUN pip wheel --no-deps --wheel-dir /wheels .

FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PATH=/opt/framehook/bin:$PATH \
    FRAMEHOOK_HOST=0.0.0.0 \
    FRAMEHOOK_PORT=8000 \
    FRAMEHOOK_LOG_FORMAT=json \
    FRAMEHOOK_DATABASE_URL=sqlite:////data/framehook.db \
    FRAMEHOOK_STORAGE_URL=/data/assets
# A fixed, unprivileged uid: a volume mounted on /data must be writable by 10001.
RUN useradd --create-home --uid 10001 --user-group framehook \
    && mkdir -p /data \
    && chown framehook:framehook /data
# The dependencies' layer is shared by every build of the same pyproject.toml; a change to the
# code adds only the small layers below.
COPY --from=deps /opt/framehook /opt/framehook
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-deps /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels \
    && framehook --help > /dev/null
# Numeric, so that a runtime can tell it is not root (Kubernetes' runAsNonRoot).
USER 10001:10001
WORKDIR /home/framehook
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('FRAMEHOOK_PORT', '8000')}/healthz\", timeout=2)"]
CMD ["framehook", "serve", "--host", "0.0.0.0"]
