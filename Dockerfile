# elax-plan in a container (Python 3.11, slim Debian, a non-root user):
#   docker build -t elax-plan .
#   docker run --rm -v "$PWD:/work" elax-plan plan plans/quickstart.yaml
#   docker run --rm -v "$PWD/plans:/plans:ro" -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY \
#     elax-plan apply --queue /plans --auto-approve      # a worker, as in examples/kubernetes/
#
# Its two steps are scripts/build_wheel.sh and scripts/install_wheel.sh: the GitHub Action
# runs them too, and tests/test_deploy_files.py runs them on a fresh clone (then `elax-plan
# --version` and the quickstart), so the image's install is tested without Docker.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the wheel, with the two C extensions (the compiler stays in this stage) ---------
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN sh scripts/build_wheel.sh /src /dist

# --- runtime: the wheel with the extras parquet and zstd in /opt/elax-plan -------------------
FROM ${PYTHON_IMAGE}
ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/elax-plan/bin:$PATH
COPY scripts/install_wheel.sh /tmp/install_wheel.sh
COPY --from=build /dist /tmp/dist
RUN sh /tmp/install_wheel.sh /tmp/dist /opt/elax-plan \
    && rm -rf /tmp/dist /tmp/install_wheel.sh
# The user the pods run as (examples/kubernetes/: runAsUser 10001); /work is its directory.
RUN groupadd --gid 10001 elax \
    && useradd --uid 10001 --gid 10001 --home-dir /home/elax --create-home --shell /usr/sbin/nologin elax \
    && mkdir /work && chown elax:elax /work
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["elax-plan"]
CMD ["--help"]
