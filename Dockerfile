# framehook: one image for every role; the command picks it:
#   framehook serve                                   receiver with an embedded worker (default)
#   framehook serve --no-worker --host 0.0.0.0        receiver replica (docker-compose.yml)
#   framehook worker                                  standalone worker
#   framehook db upgrade                              migrations, once before a deploy
FROM python:3.12-slim AS build
# PostgreSQL for scale-out, S3 (and S3-compatible stores: MinIO, R2) for shared asset storage.
ARG EXTRAS=postgres,s3
WORKDIR /src
COPY pyproject.toml README.md ./
COPY receiver ./receiver
COPY handlers ./handlers
COPY storage ./storage
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[${EXTRAS}]"

FROM python:3.12-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FRAMEHOOK_HOST=0.0.0.0 \
    FRAMEHOOK_PORT=8000 \
    FRAMEHOOK_LOG_FORMAT=json \
    FRAMEHOOK_DATABASE_URL=sqlite:////data/framehook.db \
    FRAMEHOOK_STORAGE_URL=/data/assets
RUN useradd --create-home --uid 10001 framehook \
    && mkdir -p /data && chown framehook:framehook /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER framehook
WORKDIR /home/framehook
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('FRAMEHOOK_PORT', '8000')}/healthz\", timeout=2)"]
CMD ["framehook", "serve"]
