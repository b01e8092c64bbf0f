# Bulletin: one image for the HTTP server and the `bulletin` CLI (migrate, token, demo).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The source lives in /srv/bulletin and is installed editable: app/rendering.py finds the
# templates and static files at <source>/web, which a site-packages install would not carry.
WORKDIR /srv/bulletin
COPY . .
RUN pip install --no-cache-dir -c requirements.lock -e . \
    && useradd --system --home-dir /var/lib/bulletin --create-home bulletin

# The default SQLite file sits in a volume the non-root user owns;
# set BULLETIN_DATABASE_URL to postgresql://... in production.
ENV BULLETIN_DATABASE_URL=sqlite+aiosqlite:////var/lib/bulletin/bulletin.db \
    BULLETIN_MIGRATE_ON_START=1
VOLUME ["/var/lib/bulletin"]
USER bulletin

EXPOSE 8000
# python rather than curl: the slim image has no curl. urlopen fails on any non-2xx answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["bulletin", "serve", "--host", "0.0.0.0", "--port", "8000"]
