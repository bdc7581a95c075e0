# syntax=docker/dockerfile:1
#
# iqgate, the DICOM node, for GPU hosts (it runs on the CPU too when no GPU is visible).
#
#   docker build -t iqgate .
#   docker run --gpus all -p 11112:11112 -p 8080:8080 \
#       -e IQGATE_PACS=PACS@pacs.example.org:104 -e IQGATE_ALLOWED_CALLING_AES=CT01,DX01 iqgate
#
# The builder stage makes a virtual environment in /opt/venv with the project and its
# `gpu` extra (onnxruntime-gpu and NVIDIA nvImageCodec; never together with `cpu`, both
# install the same module); the runtime stage copies it onto the CUDA runtime image.
# Both stages use the same base so the venv's interpreter (/usr/bin/python3.12 of
# Ubuntu 24.04) is the same file in both. torch wheels carry their own CUDA libraries;
# the base image brings the CUDA runtime and cuDNN for onnxruntime-gpu. The host needs
# only the NVIDIA driver and the container toolkit.
#
# Models: the packages in models/ are baked into /models; mount a folder of your own
# there (read-only is enough) to replace them. Spool and results live under
# /var/lib/iqgate; keep the spool on a persistent volume, it holds every accepted image
# until its results are delivered.

ARG CUDA_IMAGE=nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04

FROM ${CUDA_IMAGE} AS builder
# Same pins as the Makefile; installed first so the project install keeps them.
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.12 python3.12-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3.12 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install --upgrade pip \
    && pip install "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service/ service/
RUN pip install ".[gpu]"
# models/ may be absent from a fresh clone: the whole (filtered) context is copied and
# the folder made, so the runtime stage always has a /models to copy.
COPY . /context
RUN mkdir -p /context/models

FROM ${CUDA_IMAGE} AS runtime
ARG IQGATE_UID=10001
LABEL org.opencontainers.image.title="iqgate" \
      org.opencontainers.image.description="Explainable image-quality gate: a DICOM node with NormGrad saliency (not for diagnosis)"
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.12 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid ${IQGATE_UID} iqgate \
    && useradd --system --uid ${IQGATE_UID} --gid iqgate --home-dir /var/lib/iqgate \
        --shell /usr/sbin/nologin iqgate \
    && install -d -o iqgate -g iqgate -m 0750 \
        /var/lib/iqgate /var/lib/iqgate/spool /var/lib/iqgate/results
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /context/models /models
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    IQGATE_MODELS_DIR=/models \
    IQGATE_SPOOL_DIR=/var/lib/iqgate/spool \
    IQGATE_RESULTS_DIR=/var/lib/iqgate/results \
    IQGATE_DEVICE=auto
VOLUME ["/var/lib/iqgate/spool", "/var/lib/iqgate/results"]
WORKDIR /var/lib/iqgate
USER ${IQGATE_UID}:${IQGATE_UID}
# DICOM (C-ECHO, C-STORE) and the operations endpoint (/metrics, /healthz, /readyz).
EXPOSE 11112 8080
# Loading the models takes a while on a cold start; the node drains on SIGTERM.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('IQGATE_HTTP_PORT', '8080'), timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["iqgate"]
CMD ["serve"]
