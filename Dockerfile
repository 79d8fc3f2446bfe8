# The Dossier image: API (`dossier serve`), migrations (`dossier migrate`) and
# the job worker (`dossier worker`) all run from it; docker-compose.yml picks
# the subcommand.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# tesseract-ocr with English and German: the OCR engine of text extraction
# (document intelligence reads scanned pages and images in both languages).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, in a layer of their own that a code change does not
# invalidate: install the project with an empty `backend` package, then drop it.
COPY pyproject.toml setup.py README.md ./
RUN mkdir -p backend alembic/versions && touch backend/__init__.py \
    && pip install . \
    && rm -rf backend alembic build ./*.egg-info

# The project itself, installed like any wheel: the migrations travel inside it
# (the `dossier_migrations` package), so nothing runs from /app.
COPY alembic ./alembic
COPY backend ./backend
RUN pip install --no-deps --force-reinstall . \
    && rm -rf build ./*.egg-info alembic backend

# The code stays root-owned and read-only to the process; only /data (blobs, the
# `blobs` volume in docker-compose.yml) is writable. A named volume mounted
# there starts with this directory's owner.
RUN useradd --system --uid 10001 --user-group --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin dossier \
    && mkdir -p /data \
    && chown dossier:dossier /data
ENV DOSSIER_DATA_DIR=/data
USER 10001:10001

EXPOSE 8000
# No HEALTHCHECK here: the same image runs one-shot migrations and the worker,
# which serve no HTTP; docker-compose.yml gives the API its own healthcheck.
ENTRYPOINT ["dossier"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
