# The prediction service (and the training CLI) on a slim CPU image.
#   docker build -t cora-gnn .
#   docker run --rm -v "$PWD/work:/work" cora-gnn cora-gnn train --model gcn --out runs/gcn
#   docker run --rm -v "$PWD/work:/work" cora-gnn cora-gnn promote gcn
#   docker run -d -p 8000:8000 -v "$PWD/work:/work" cora-gnn
# tests/test_container.py runs these RUN, CMD and HEALTHCHECK commands outside Docker.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    WANDB_MODE=offline \
    CORA_GNN_PORT=8000

# CPU torch, pinned (an unpinned torch pulls a multi-GB CUDA build); --build-arg TORCH_INDEX= takes it from pip's default index.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cora_gnn ./cora_gnn
RUN pip install ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} torch==2.13.0 && pip install .

RUN useradd --create-home --uid 10001 cora && mkdir /work && chown cora /work
USER cora
# runs/, data/, the prediction log and drift reports live here: mount a volume to keep them
WORKDIR /work
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/health' % os.environ.get('CORA_GNN_PORT', '8000'), timeout=4)"]
CMD ["cora-gnn", "serve", "--host", "0.0.0.0"]
