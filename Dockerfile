# Two images from one file. The default target is the workers' image, with what a worker needs
# and nothing more (no sandbox, FastAPI, trustme or FastStream):
#   docker build -t regbridge .                                   # regbridge run gvr|nvr|catalog …
#   docker build --target sandbox -t regbridge-sandbox .          # regbridge sandbox …, dev demo
# (Neither can be built on the project's own machines: they have no Docker engine.)
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN pip install "uv==0.13.9"
WORKDIR /src
COPY requirements.prod.lock requirements.sandbox.lock ./
RUN uv venv /opt/regbridge && uv pip install --python /opt/regbridge/bin/python -r requirements.prod.lock
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN uv pip install --python /opt/regbridge/bin/python --no-deps .

FROM build AS build-sandbox
RUN uv pip install --python /opt/regbridge/bin/python -r requirements.sandbox.lock

FROM python:3.11-slim AS sandbox
# /certs exists and is ours, so a fresh named volume mounted there (compose's *-certs, cvr-keys)
# takes this owner and the sandbox can write its keys and certificates into it
RUN useradd --system --uid 10001 --no-create-home regbridge \
    && install -d -o 10001 -g 10001 /certs
COPY --from=build-sandbox /opt/regbridge /opt/regbridge
ENV PATH=/opt/regbridge/bin:$PATH PYTHONUNBUFFERED=1
USER 10001
ENTRYPOINT ["regbridge"]
CMD ["sandbox", "--help"]

FROM python:3.11-slim AS worker
RUN useradd --system --uid 10001 --no-create-home regbridge
COPY --from=build /opt/regbridge /opt/regbridge
ENV PATH=/opt/regbridge/bin:$PATH PYTHONUNBUFFERED=1
USER 10001
ENTRYPOINT ["regbridge"]
CMD ["--help"]
