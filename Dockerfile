# CWN hub: slim Python image, non-root, migrates then serves.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HUB_HOST=0.0.0.0 \
    HUB_PORT=8000 \
    HUB_DATABASE_URL=sqlite:////var/lib/hub/hub.db

RUN groupadd --system hub && useradd --system --gid hub --home-dir /var/lib/hub hub \
    && mkdir -p /var/lib/hub && chown hub:hub /var/lib/hub

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY hub ./hub
COPY tlp ./tlp
COPY connectors ./connectors
COPY migrations ./migrations
RUN pip install . && rm -rf /app/build

USER hub
WORKDIR /var/lib/hub
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"
CMD ["sh", "-c", "hub db upgrade && hub init && exec hub serve --host \"$HUB_HOST\" --port \"$HUB_PORT\""]
