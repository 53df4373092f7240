# syntax=docker/dockerfile:1
# Builder: the locked dependencies first (cached while requirements/ is unchanged), then the code;
# the wheel's build hook compiles the catalogs. Every download is checked against the locks'
# hashes (scripts/lock writes them); frontdesk itself is installed without resolving anything.
FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY requirements/base.lock requirements/build.lock requirements/
RUN /opt/venv/bin/pip install --require-hashes -r requirements/base.lock
# The build system (hatchling, Babel) goes into the builder's own Python, not the image's venv.
RUN pip install --require-hashes -r requirements/build.lock
COPY . .
RUN pip wheel --no-deps --no-build-isolation -w /tmp/wheels . \
    && /opt/venv/bin/pip install --no-deps /tmp/wheels/*.whl

# Runtime: the venv only, as an unprivileged user.
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 DATABASE_URL=sqlite+aiosqlite:////data/frontdesk.sqlite3
RUN useradd --system --uid 10001 --home-dir /data --create-home frontdesk
COPY --from=builder /opt/venv /opt/venv
USER frontdesk
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
# /healthz is served in both modes (polling and webhook): 503 only when the database (or Redis,
# when used) is down; a degraded queue or filing backlog answers 200 (an alert, not a restart).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('WEB_PORT', '8080'), timeout=4)"
CMD ["python", "-m", "bot"]
