# One image for the three services and the provisioning job; compose picks the command:
#   python -m services.registration | services.reporting | services.notification | provision
#
# Stage 1 resolves exactly uv.lock (no test or bench extras) into /app/.venv with the project installed as
# a wheel, so stage 2 needs neither uv nor the sources: only the virtualenv and a non-root user.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /src

# Dependencies first: this layer is rebuilt only when the lock changes, not on every code change.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project

COPY shared/ shared/
COPY services/ services/
# The provisioning job (deploy/provision), installed as the top-level package `provision`.
COPY deploy/provision/ deploy/provision/
RUN uv sync --frozen --no-dev --no-editable


FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="lindungi" \
      org.opencontainers.image.description="Lindungi services: registration, reporting, notification" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed uid/gid so volume ownership and compose's `user:` are predictable.
RUN groupadd --system --gid 10001 lindungi \
    && useradd --system --uid 10001 --gid lindungi --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin lindungi

COPY --from=builder /app/.venv /app/.venv

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LINDUNGI_LOG_FORMAT=json

WORKDIR /app
USER 10001:10001

# No command of its own: every compose service names one (docker-compose.yml).
