"""Settings: defaults, parsing, and secrets (generated when unset, never built in)."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from ipaddress import ip_network
from pathlib import Path

import pytest
from pydantic import ValidationError

from backend.settings import GENERATED_SECRETS, RateLimit, Settings, stored_secret

STRONG = "x" * 40


@pytest.fixture(autouse=True)
def _no_configured_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts like a new machine: no secrets or data directory in the
    environment, and a working directory without `.env` or `.dossier`."""
    for name in (*GENERATED_SECRETS, "dossier_data_dir"):
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_unset_secrets_are_generated_private_and_reused(tmp_path: Path) -> None:
    first = Settings(dossier_data_dir=tmp_path / "data")
    values = {name: getattr(first, name).get_secret_value() for name in GENERATED_SECRETS}
    assert len(set(values.values())) == 3
    assert all(len(value) >= 32 for value in values.values())
    directory = tmp_path / "data" / "secrets"
    assert _mode(directory) == 0o700
    for name, value in values.items():
        assert _mode(directory / name) == 0o600
        assert (directory / name).read_text().strip() == value

    again = Settings(dossier_data_dir=tmp_path / "data")
    assert {name: getattr(again, name).get_secret_value() for name in GENERATED_SECRETS} == values
    other = Settings(dossier_data_dir=tmp_path / "elsewhere")
    assert other.jwt_secret.get_secret_value() != values["jwt_secret"]


def test_the_default_data_directory_is_used(tmp_path: Path) -> None:
    settings = Settings()
    stored = (tmp_path / ".dossier" / "secrets" / "jwt_secret").read_text().strip()
    assert settings.jwt_secret.get_secret_value() == stored


def test_explicit_secrets_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Settings(dossier_data_dir=tmp_path)  # stored ones exist and are not used below
    monkeypatch.setenv("JWT_SECRET", STRONG)
    settings = Settings(dossier_data_dir=tmp_path, api_key_pepper="p" * 32)
    assert settings.jwt_secret.get_secret_value() == STRONG
    assert settings.api_key_pepper.get_secret_value() == "p" * 32
    stored = (tmp_path / "secrets" / "signing_secret").read_text().strip()
    assert settings.signing_secret.get_secret_value() == stored

    fresh = tmp_path / "fresh"
    Settings(dossier_data_dir=fresh, api_key_pepper=STRONG, signing_secret=STRONG)
    assert not (fresh / "secrets" / "jwt_secret").exists()
    assert not (fresh / "secrets" / "api_key_pepper").exists()


@pytest.mark.parametrize("environment", ["development", "production"])
def test_no_environment_name_lets_weak_secrets_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environment: str
) -> None:
    """ENVIRONMENT (a setting of old versions, now ignored) decides nothing:
    unset means generated, short means refused."""
    monkeypatch.setenv("ENVIRONMENT", environment)
    generated = Settings(dossier_data_dir=tmp_path)
    assert len(generated.jwt_secret.get_secret_value()) >= 32
    with pytest.raises(ValidationError, match="JWT_SECRET must be a random value"):
        Settings(dossier_data_dir=tmp_path, jwt_secret="short")


def test_short_secrets_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET, SIGNING_SECRET must be"):
        Settings(dossier_data_dir=tmp_path, jwt_secret="", signing_secret="s" * 31)


def test_a_stored_secret_others_can_read_is_refused(tmp_path: Path) -> None:
    Settings(dossier_data_dir=tmp_path)
    (tmp_path / "secrets" / "api_key_pepper").chmod(0o644)
    with pytest.raises(ValueError, match="readable by other users"):
        Settings(dossier_data_dir=tmp_path)


def test_a_tampered_stored_secret_is_refused(tmp_path: Path) -> None:
    Settings(dossier_data_dir=tmp_path)
    (tmp_path / "secrets" / "signing_secret").write_text("short\n")
    with pytest.raises(ValueError, match="fewer than 32 characters"):
        Settings(dossier_data_dir=tmp_path)


def test_processes_starting_together_share_one_secret(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        values = list(pool.map(lambda _: stored_secret(tmp_path, "jwt_secret"), range(32)))
    assert len({value.get_secret_value() for value in values}) == 1
    assert [path.name for path in (tmp_path / "secrets").iterdir()] == ["jwt_secret"]


def test_secrets_never_show_in_repr() -> None:
    secret = "super-secret-value-" + "s" * 32
    settings = Settings(jwt_secret=secret, database_url="postgresql://u:pw@h/db")
    assert secret not in repr(settings)
    assert "pw@" not in repr(settings)
    assert secret not in str(settings.model_dump())


def test_environment_values_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_LIMIT_LOGIN", "5/30")
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example,https://b.example")
    settings = Settings()
    assert settings.rate_limit_login == RateLimit(5, 30)
    assert settings.trusted_proxies == [ip_network("10.0.0.0/8"), ip_network("127.0.0.1/32")]
    assert settings.cors_origins == ["https://a.example", "https://b.example"]


@pytest.mark.parametrize("value", ["5", "x/60", "0/60", "10/0", ""])
def test_bad_rate_limits_are_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("RATE_LIMIT_DEFAULT", value)
    with pytest.raises(ValidationError):
        Settings()


def test_every_setting_is_documented_in_env_example() -> None:
    example = (Path(__file__).parents[1] / ".env.example").read_text()
    documented = {
        line.lstrip("# ").split("=", 1)[0]
        for line in example.splitlines()
        if "=" in line and line.lstrip("# ").split("=", 1)[0].isupper()
    }
    missing = {name.upper() for name in Settings.model_fields} - documented
    assert not missing, f"undocumented settings: {sorted(missing)}"
