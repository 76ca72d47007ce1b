# One image for every regbridge process: `regbridge run catalog`, `regbridge sandbox hsa`, …
# Build: docker build -t regbridge .   (cannot be built on the project's own machines: no engine)
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN pip install "uv==0.13.9"
WORKDIR /src
COPY requirements.prod.lock ./
RUN uv venv /opt/regbridge && uv pip install --python /opt/regbridge/bin/python -r requirements.prod.lock
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN uv pip install --python /opt/regbridge/bin/python --no-deps .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home regbridge
COPY --from=build /opt/regbridge /opt/regbridge
ENV PATH=/opt/regbridge/bin:$PATH PYTHONUNBUFFERED=1
USER 10001
ENTRYPOINT ["regbridge"]
CMD ["--help"]
