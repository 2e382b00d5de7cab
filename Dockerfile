# framehook: one image for every role (receiver, worker); the command picks the role.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY receiver ./receiver
COPY handlers ./handlers
COPY storage ./storage
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[postgres]'

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
