# syntax=docker/dockerfile:1
#
# One image, three composition functions. Pick the entry point with --target:
#
#   docker build --target function-inferenceservice -t <repo>/function-inferenceservice:<tag> .
#   docker build --target function-gpupool           -t <repo>/function-gpupool:<tag> .
#   docker build --target function-tokencache        -t <repo>/function-tokencache:<tag> .
#
# (`make docker-build IMG=<repo>` builds all three.) Without --target the last stage,
# function-inferenceservice, is built. Each serves gRPC on 0.0.0.0:9443; Crossplane's function
# runtime supplies the mTLS certificates through TLS_SERVER_CERTS_DIR.
#
# The metrics sidecar (sidecar/README.md) is a fourth target of the same image:
#
#   docker build --target sidecar -t <repo>/inference-sidecar:<tag> .   # make sidecar-image

# Must stay the minor version of the runtime image's Python (Debian 12: 3.11).
ARG PYTHON_VERSION=3.11
ARG UV_VERSION=0.13.9

# ---------------------------------------------------------------------------------------------
# Build: resolve the locked dependencies and the project into /venv with uv.
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ARG PYTHON_VERSION
ARG UV_VERSION

RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --root-user-action=ignore "uv==${UV_VERSION}"

ENV UV_PROJECT_ENVIRONMENT=/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_FROZEN=1

WORKDIR /src

# Dependencies first (cached until uv.lock or pyproject.toml change), then the project itself
# as a regular, non-editable install.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --no-dev --no-install-project --python /usr/local/bin/python${PYTHON_VERSION}

COPY pyproject.toml uv.lock README.md ./
COPY functions ./functions
COPY sidecar ./sidecar
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --no-dev --no-editable --python /usr/local/bin/python${PYTHON_VERSION}

# The venv's interpreter link points at this image's /usr/local/bin/python3.11. The runtime
# image has Debian 12's CPython 3.11 at /usr/bin/python3.11 (same minor version, same ABI), so
# point the venv there; the link dangles here and resolves in the runtime stage.
RUN ln -sf /usr/bin/python${PYTHON_VERSION} /venv/bin/python \
    && sed -i 's#^home = .*#home = /usr/bin#' /venv/pyvenv.cfg

# ---------------------------------------------------------------------------------------------
# Runtime: distroless Debian 12 with Python 3.11, no shell, non-root.
FROM gcr.io/distroless/python3-debian12:nonroot AS runtime
WORKDIR /
# Bytecode for the standard library: Debian's python3.11 packages compile it in their
# post-install scripts, which distroless (assembled from the .debs) never runs, so without this
# step every process compiles each standard-library module it imports at every start, with
# PYTHONDONTWRITEBYTECODE and a read-only root filesystem: on the benchmark machine the metrics
# sidecar as rendered took 1.05-1.34 s instead of 0.24-0.34 s to be ready and held 4.5 MiB more
# (sidecar/BENCHMARK.md, `--bytecode venv` against `all`).
# Exec form (the image has no shell), as root for this step only; the exclusions are those of
# CPython's own `make install`. unchecked-hash: the .pyc files are used without comparing the
# sources' timestamps, which image layers need not keep (nothing in the image changes them).
USER 0
RUN ["/usr/bin/python3.11", "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", \
     "-x", "bad_coding|badsyntax|site-packages|lib2to3/tests/data", "/usr/lib/python3.11"]
# Same path as in the build stage, so console-script shebangs (#!/venv/bin/python) hold.
COPY --from=build /venv /venv
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
EXPOSE 9443
USER 65532:65532

# Metrics sidecar: /metrics on :8080, /healthz and /readyz on :8081, configured by environment
# (sidecar/README.md); runs as 65532 with a read-only root filesystem (it writes nothing).
FROM runtime AS sidecar
EXPOSE 8080 8081
ENTRYPOINT ["/venv/bin/inference-sidecar"]

FROM runtime AS function-gpupool
ENTRYPOINT ["/venv/bin/function-gpupool"]

FROM runtime AS function-tokencache
ENTRYPOINT ["/venv/bin/function-tokencache"]

FROM runtime AS function-inferenceservice
ENTRYPOINT ["/venv/bin/function-inferenceservice"]
