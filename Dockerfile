# Bulletin: one image for the HTTP server and the `bulletin` CLI (migrate, token, demo).
#
# Two stages. The first installs the serving dependencies from requirements.lock with no
# source in sight, so a change to the code rebuilds only the last few layers; the second
# adds the source, read-only to the user Bulletin runs as. tests/, bench/ and the rest of
# the working tree never enter the build (see .dockerignore).

# python:3.11.16-slim-bookworm, pinned by its multi-platform index digest (2026-09-01).
FROM python:3.11.16-slim-bookworm@sha256:c425d915a89a6dcd3183b1797ad9bd8878caff5a417f6371c8df93c8ea8b727f AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

FROM base AS dependencies
RUN python -m venv /opt/venv \
    && pip install --no-cache-dir setuptools==84.2.1
WORKDIR /build
COPY pyproject.toml requirements.lock ./
# What serving needs is the dependency list of pyproject.toml; the lock pins every version
# (it lists the development tools too, which stay out).
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > serving.txt \
    && pip install --no-cache-dir -c requirements.lock -r serving.txt

FROM base
# A numeric user, so that USER needs no name lookup (and Kubernetes' runAsNonRoot can
# check it). It owns only the volume.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/bulletin --no-create-home bulletin \
    && install --directory --owner=10001 --group=10001 --mode=0750 /var/lib/bulletin
COPY --from=dependencies /opt/venv /opt/venv
# The source stays where it is and is installed editable: app/rendering.py finds the
# templates and static files at <source>/web, and migrations/ is read from the tree too.
# Root owns it, so the process can read it and change none of it; the bytecode is
# compiled here because the process may not write it.
WORKDIR /srv/bulletin
COPY . .
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e . \
    && python -m compileall -q app migrations \
    && chmod -R go-w /srv/bulletin

# The default SQLite file sits in a volume the user owns; set BULLETIN_DATABASE_URL to
# postgresql://... in production (compose.yaml does).
# Uploaded photos' renditions (BULLETIN_MEDIA_STORAGE=local) are kept in the volume too.
ENV BULLETIN_DATABASE_URL=sqlite+aiosqlite:////var/lib/bulletin/bulletin.db \
    BULLETIN_MEDIA_DIR=/var/lib/bulletin/media \
    BULLETIN_MIGRATE_ON_START=1
VOLUME ["/var/lib/bulletin"]
USER 10001:10001

EXPOSE 8000
# python rather than curl: the slim image has no curl. urlopen fails on any non-2xx answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# Migrates first (under the lock) when BULLETIN_MIGRATE_ON_START is set, then runs the
# command: `docker run IMAGE bulletin token create ...` works on a new volume too.
ENTRYPOINT ["/srv/bulletin/docker/entrypoint.sh"]
CMD ["bulletin", "serve", "--host", "0.0.0.0", "--port", "8000"]
