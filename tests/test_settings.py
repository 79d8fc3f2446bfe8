"""Settings: defaults, parsing, and refusal of default secrets in production."""

from __future__ import annotations

from ipaddress import ip_network

import pytest
from pydantic import ValidationError

from backend.settings import DEV_SECRET, RateLimit, Settings

STRONG = "x" * 40


def test_production_refuses_default_secrets() -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET, API_KEY_PEPPER, SIGNING_SECRET"):
        Settings(environment="production")


def test_production_refuses_short_secrets() -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(
            environment="production",
            jwt_secret="short",
            api_key_pepper=STRONG,
            signing_secret=STRONG,
        )


def test_production_accepts_strong_secrets() -> None:
    settings = Settings(
        environment="production", jwt_secret=STRONG, api_key_pepper=STRONG, signing_secret=STRONG
    )
    assert settings.is_production


def test_development_allows_default_secrets() -> None:
    assert Settings().jwt_secret.get_secret_value() == DEV_SECRET


def test_secrets_never_show_in_repr() -> None:
    settings = Settings(jwt_secret="super-secret-value", database_url="postgresql://u:pw@h/db")
    assert "super-secret-value" not in repr(settings)
    assert "pw@" not in repr(settings)
    assert "super-secret-value" not in str(settings.model_dump())


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
    from pathlib import Path

    example = (Path(__file__).parents[1] / ".env.example").read_text()
    documented = {
        line.lstrip("# ").split("=", 1)[0]
        for line in example.splitlines()
        if "=" in line and line.lstrip("# ").split("=", 1)[0].isupper()
    }
    missing = {name.upper() for name in Settings.model_fields} - documented
    assert not missing, f"undocumented settings: {sorted(missing)}"
