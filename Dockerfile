# Build stage: durable-rules 2.0.28 ships as source and compiles its C engine with gcc.
FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc g++ make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir --upgrade pip \
    && /venv/bin/pip install --no-cache-dir .

# Runtime stage: no compiler, non-root user, rules and migrations beside the code.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 subsidy
COPY --from=build /venv /venv
WORKDIR /app
COPY rules ./rules
COPY migrations ./migrations
COPY openapi.yaml ./
ENV PATH=/venv/bin:$PATH \
    RULES_DIR=/app/rules \
    DATABASE_URL=sqlite:////app/data/subsidy.db \
    PYTHONUNBUFFERED=1
RUN mkdir -p /app/data && chown subsidy /app/data
# The SQLite file (DATABASE_URL above) lives on a volume: it outlives the container. Declared
# after the chown, which a volume keeps; mount one (`-v subsidy-data:/app/data`) to name it.
VOLUME ["/app/data"]
USER subsidy
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"
# One process per container: durable_rules is serialised by one lock per process; scale with
# replicas (see README, "Deployment").
# The schema first (production runs the migrations explicitly; AUTO_MIGRATE stays off).
# On SIGTERM uvicorn stops accepting connections and lets requests in flight finish for up to
# 25 s (inside Kubernetes' default 30 s grace period; use `docker stop -t 30`), then exits 0
# (exec: uvicorn is PID 1). Logs: one JSON object per line on stderr (LOG_FORMAT=json).
# --no-proxy-headers: uvicorn's own default believes X-Forwarded-For from any local client; the
# app believes it only from the proxies in TRUSTED_PROXIES (none unless set).
CMD ["sh", "-c", "alembic -c migrations/alembic.ini upgrade head && exec uvicorn service.main:app --host 0.0.0.0 --port 8000 --no-proxy-headers --timeout-graceful-shutdown 25"]
