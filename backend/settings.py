"""Every setting of Dossier, read from the environment (and `.env`).

`.env.example` documents each one. Secrets are `SecretStr`, so they never show
in a `repr`, a log line or an error. There are no built-in secrets: a secret
that is not set is generated at the first start and kept under
`DOSSIER_DATA_DIR/secrets/` (readable by the owner only), and read from there
at every later start; one that is set must have 32+ characters.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from enum import StrEnum
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIN_SECRET_LENGTH = 32
SECRETS_DIR = "secrets"
GENERATED_SECRETS = ("jwt_secret", "api_key_pepper", "signing_secret")


class MailBackendName(StrEnum):
    CONSOLE = "console"
    SMTP = "smtp"


class RateLimit:
    """A `<count>/<seconds>` limit such as `600/60`."""

    __slots__ = ("count", "seconds")

    def __init__(self, count: int, seconds: int) -> None:
        if count < 1 or seconds < 1:
            raise ValueError("a rate limit needs a positive count and window")
        self.count = count
        self.seconds = seconds

    @classmethod
    def parse(cls, value: str) -> RateLimit:
        count, sep, seconds = value.strip().partition("/")
        if not sep or not count.isdigit() or not seconds.isdigit():
            raise ValueError(f"rate limit {value!r} is not <count>/<seconds>")
        return cls(int(count), int(seconds))

    def exceeds(self, other: RateLimit) -> bool:
        """Allows more than `other`: a higher sustained rate, or at the same
        rate a larger burst."""
        mine, theirs = self.count * other.seconds, other.count * self.seconds
        return mine > theirs or (mine == theirs and self.count > other.count)

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds}"

    def __repr__(self) -> str:
        return f"RateLimit({self})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RateLimit) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


class PlanSpec(BaseModel):
    """What a plan grants; `rate_limit` None means `RATE_LIMIT_DEFAULT`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    storage_bytes: int = Field(ge=0)
    max_running_jobs: int = Field(ge=0)
    rate_limit: str | None = None
    max_crawl_pages: int = Field(default=1000, ge=1)

    @field_validator("rate_limit")
    @classmethod
    def _valid_rate_limit(cls, value: str | None) -> str | None:
        return str(RateLimit.parse(value)) if value is not None else None


_GIB = 1024**3

DEFAULT_PLANS: dict[str, PlanSpec] = {
    "free": PlanSpec(storage_bytes=_GIB, max_running_jobs=2, max_crawl_pages=500),
    "pro": PlanSpec(
        storage_bytes=100 * _GIB, max_running_jobs=10, rate_limit="1200/60", max_crawl_pages=5000
    ),
    "enterprise": PlanSpec(
        storage_bytes=1024 * _GIB, max_running_jobs=50, rate_limit="6000/60", max_crawl_pages=50000
    ),
}


def stored_secret(data_dir: Path, name: str) -> SecretStr:
    """The secret `name` kept under `data_dir/secrets/`, made at the first call.

    A fresh value is written to a private temporary file and linked into
    place, so processes starting together (API processes, workers on one
    volume) all end up with the one value that was linked first. A stored file
    that others may read is refused rather than trusted.
    """
    directory = data_dir / SECRETS_DIR
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / name
    if not path.exists():
        temporary = directory / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(48) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):  # another process was first
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        raise ValueError(
            f"{path} is readable by other users: delete it (a new secret is made at the next "
            "start, ending every session and signed link) or make it private (chmod 600)"
        )
    value = path.read_text().strip()
    if len(value) < MIN_SECRET_LENGTH:
        raise ValueError(f"{path} holds fewer than {MIN_SECRET_LENGTH} characters")
    return SecretStr(value)


def _generated(name: str) -> Any:
    """A default factory: the stored secret under the settings' data directory."""

    def factory(data: dict[str, Any]) -> SecretStr:
        return stored_secret(Path(data["dossier_data_dir"]), name)

    return factory


def _csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    app_name: str = "Dossier"
    log_level: str = "INFO"

    database_url: SecretStr | None = None
    redis_url: SecretStr | None = None
    dossier_data_dir: Path = Path(".dossier")
    db_app_role: str = "dossier_app"
    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    redis_key_prefix: str = "dossier"

    # Unset: generated at the first start, kept under DOSSIER_DATA_DIR/secrets/.
    jwt_secret: SecretStr = Field(default_factory=_generated("jwt_secret"))
    jwt_algorithm: str = "HS256"
    jwt_issuer: str = "dossier"
    jwt_audience: str = "dossier-api"
    access_token_ttl_seconds: int = Field(default=900, ge=30)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    api_key_pepper: SecretStr = Field(default_factory=_generated("api_key_pepper"))
    signing_secret: SecretStr = Field(default_factory=_generated("signing_secret"))
    password_hash_memory_kib: int = Field(default=19456, ge=19456)
    password_hash_time_cost: int = Field(default=2, ge=2)
    password_hash_parallelism: int = Field(default=1, ge=1)
    password_hash_concurrency: int = Field(default=0, ge=0)

    signup_enabled: bool = True
    max_upload_bytes: int = Field(default=100 * 1024 * 1024, ge=1)
    max_json_bytes: int = Field(default=1024 * 1024, ge=1024)
    rate_limit_default: Annotated[RateLimit, NoDecode] = RateLimit(600, 60)
    rate_limit_anonymous: Annotated[RateLimit, NoDecode] = RateLimit(60, 60)
    rate_limit_login: Annotated[RateLimit, NoDecode] = RateLimit(10, 60)
    rate_limit_login_username: Annotated[RateLimit, NoDecode] = RateLimit(100, 60)
    rate_limit_ws_handshake: Annotated[RateLimit, NoDecode] = RateLimit(30, 60)
    ws_max_connections_per_principal: int = Field(default=10, ge=1)
    principal_cache_seconds: float = Field(default=60, ge=0)
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = [
        ip_network("127.0.0.1/32")
    ]
    cors_origins: Annotated[list[str], NoDecode] = []
    gzip_minimum_size: int = Field(default=1024, ge=0)
    max_header_bytes: int = Field(default=16384, ge=1024)

    webhook_allow_private_targets: bool = False
    webhook_allow_http: bool = False
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_max_response_bytes: int = Field(default=64 * 1024, ge=0)
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    webhook_disable_after_seconds: int = Field(default=3 * 24 * 3600, ge=0)

    crawl_max_page_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    crawl_timeout_seconds: float = Field(default=20.0, gt=0)

    job_lease_seconds: float = Field(default=30.0, ge=0.5)
    job_poll_interval_seconds: float = Field(default=2.0, gt=0)
    job_retry_base_seconds: float = Field(default=2.0, ge=0)
    job_retry_max_seconds: float = Field(default=600.0, ge=0)
    job_default_max_attempts: int = Field(default=3, ge=1, le=20)
    job_default_max_running: int = Field(default=10, ge=1)
    job_shutdown_timeout_seconds: float = Field(default=30.0, ge=0)
    serve_worker_concurrency: int = Field(default=2, ge=1)
    job_default_timeout_seconds: float = Field(default=1800.0, gt=0)
    parser_memory_bytes: int = Field(default=1024 * 1024 * 1024, ge=64 * 1024 * 1024)
    parser_cpu_seconds: int = Field(default=120, ge=1)
    archive_max_members: int = Field(default=10_000, ge=1)
    archive_max_uncompressed_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    archive_max_ratio: int = Field(default=100, ge=2)
    job_idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    batch_max_items: int = Field(default=1000, ge=1, le=10_000)
    job_modules: Annotated[list[str], NoDecode] = []
    # Marking (WORKLOADS.md section 2).
    marking_review_confidence: float = Field(default=0.8, ge=0, le=1)
    marking_import_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    marking_max_sheet_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    marking_render_dpi: int = Field(default=200, ge=100, le=400)
    marking_batch_max_sheets: int = Field(default=500, ge=1)
    event_buffer_size: int = Field(default=1000, ge=10)
    ws_ping_interval_seconds: float = Field(default=20.0, gt=0)
    storage_backend: str = "local"
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    upload_allowed_types: Annotated[list[str], NoDecode] = [
        "application/pdf",
        "image/png",
        "image/jpeg",
        "image/tiff",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "text/plain",
        "model/stl",
        "model/ply",
        "model/obj",
        "model/gltf-binary",
    ]
    max_open_uploads: int = Field(default=20, ge=1)
    upload_part_size: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024)
    upload_expiry_seconds: int = Field(default=24 * 3600, ge=60)
    maintenance_interval_seconds: float = Field(default=300, gt=0)
    staging_max_age_seconds: float = Field(default=86_400, gt=0)
    bulk_upload_max_files: int = Field(default=20, ge=1, le=1000)
    download_url_ttl_seconds: int = Field(default=3600, ge=10, le=7 * 24 * 3600)
    scan_max_faces: int = Field(default=5_000_000, ge=1)
    scan_memory_limit_bytes: int = Field(default=2 * 1024**3, ge=64 * 1024**2)
    scan_cpu_seconds: int = Field(default=600, ge=1)
    case_metadata_max_bytes: int = Field(default=16384, ge=64)
    case_metadata_max_depth: int = Field(default=5, ge=1, le=50)
    soft_delete_retention_days: int = Field(default=30, ge=0)
    # Document intelligence: with `ocr: auto`, a PDF page whose text layer
    # holds fewer visible characters than this is rendered and OCR'd.
    ocr_min_page_chars: int = Field(default=20, ge=0, le=10_000)
    plans: dict[str, PlanSpec] = Field(default_factory=lambda: dict(DEFAULT_PLANS))
    mail_backend: MailBackendName = MailBackendName.CONSOLE
    mail_from: str = "Dossier <no-reply@localhost>"
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_tls: bool = False
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    public_base_url: str = "http://localhost:8000"
    password_reset_ttl_seconds: int = Field(default=3600, ge=60)
    invitation_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    refresh_reuse_grace_seconds: int = Field(default=10, ge=0, le=300)
    # CV workload: the region for phone numbers written without a country
    # code when the tenant's settings name no `country`; archive import limits.
    candidates_default_region: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    import_max_entries: int = Field(default=10_000, ge=1)
    import_max_compression_ratio: int = Field(default=100, ge=1)

    @field_validator(
        "rate_limit_default",
        "rate_limit_anonymous",
        "rate_limit_login",
        "rate_limit_login_username",
        "rate_limit_ws_handshake",
        mode="before",
    )
    @classmethod
    def _parse_rate_limit(cls, value: Any) -> Any:
        return RateLimit.parse(value) if isinstance(value, str) else value

    @field_validator("candidates_default_region", mode="before")
    @classmethod
    def _empty_region(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) and value else None

    @field_validator("plans")
    @classmethod
    def _plans_not_empty(cls, value: dict[str, PlanSpec]) -> dict[str, PlanSpec]:
        if "free" not in value:
            raise ValueError("PLANS must define the `free` plan (the default of new tenants)")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_networks(cls, value: Any) -> Any:
        return [ip_network(item, strict=False) for item in _csv(value)]

    @field_validator("job_modules", mode="before")
    @classmethod
    def _parse_modules(cls, value: Any) -> Any:
        return _csv(value)

    @field_validator("upload_allowed_types", mode="before")
    @classmethod
    def _parse_types(cls, value: Any) -> Any:
        return [item.lower() for item in _csv(value)]

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: Any) -> Any:
        return _csv(value)

    @model_validator(mode="after")
    def _refuse_short_secrets(self) -> Settings:
        short = [
            name
            for name in GENERATED_SECRETS
            if len(getattr(self, name).get_secret_value()) < MIN_SECRET_LENGTH
        ]
        if short:
            names = ", ".join(name.upper() for name in short)
            raise ValueError(
                f"{names} must be a random value of {MIN_SECRET_LENGTH}+ characters "
                "(or left unset: one is then generated and kept under DOSSIER_DATA_DIR)"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
