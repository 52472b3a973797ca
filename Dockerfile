# Parley container: uv installs the locked dependencies in their own layer,
# the code comes after, and the server runs as an unprivileged user.
FROM python:3.11-slim AS base

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PATH="/app/.venv/bin:$PATH"

COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN uv venv /app/.venv && uv pip install --python /app/.venv/bin/python -r requirements.lock

COPY pyproject.toml README.md main.py schema.graphql ./
COPY schema ./schema
COPY resolvers ./resolvers
COPY db ./db
COPY auth ./auth
RUN uv pip install --python /app/.venv/bin/python --no-deps .

RUN useradd --system --uid 10001 --home-dir /app parley \
    && mkdir -p /data && chown parley /data
USER parley

ENV HOST=0.0.0.0 PORT=8000 DATA_DIR=/data
EXPOSE 8000
VOLUME ["/data"]

HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\",\"8000\")}/health', timeout=2)"

CMD ["python", "main.py"]
