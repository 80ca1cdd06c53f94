import pytest

from shared.settings import DEFAULT_SECRET_KEY, Settings, SettingsError


def test_defaults_match_the_documented_values():
    settings = Settings.from_env({})
    assert settings.access_token_expire_minutes == 15
    assert settings.refresh_token_expire_days == 7
    assert settings.api_v1_prefix == "/api/v1"
    assert settings.database_url is None  # unset: the embedded engine is used


def test_values_are_parsed_and_typed():
    settings = Settings.from_env(
        {"DEBUG": "true", "ACCESS_TOKEN_EXPIRE_MINUTES": "30", "CORS_ORIGINS": "https://a.example, https://b.example"}
    )
    assert settings.debug is True
    assert settings.access_token_expire_minutes == 30
    assert settings.cors_origins == ("https://a.example", "https://b.example")


def test_an_empty_variable_means_the_default():
    assert Settings.from_env({"DATABASE_URL": "", "SECRET_KEY": ""}).database_url is None
    assert Settings.from_env({"SECRET_KEY": ""}).secret_key == DEFAULT_SECRET_KEY


def test_a_malformed_value_names_the_variable():
    with pytest.raises(SettingsError, match="ACCESS_TOKEN_EXPIRE_MINUTES"):
        Settings.from_env({"ACCESS_TOKEN_EXPIRE_MINUTES": "soon"})


@pytest.mark.parametrize("secret", [None, DEFAULT_SECRET_KEY, "short"])
def test_production_refuses_a_missing_default_or_weak_secret(secret):
    env = {"ENVIRONMENT": "production"}
    if secret is not None:
        env["SECRET_KEY"] = secret
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        Settings.from_env(env)


PRODUCTION_KEY = "q1lq3mEo3Qj8DE1b3yJ3bOy3ppt4Yf0r0A2uB5YH4mQ="  # a Fernet key, for these tests only


def test_production_refuses_to_start_without_encryption_keys():
    with pytest.raises(SettingsError, match="ENCRYPTION_KEYS"):
        Settings.from_env({"ENVIRONMENT": "production", "SECRET_KEY": "x" * 48})


def test_production_starts_with_a_real_secret_and_keys_of_its_own():
    settings = Settings.from_env({"ENVIRONMENT": "production", "SECRET_KEY": "x" * 48, "ENCRYPTION_KEYS": PRODUCTION_KEY})
    assert settings.is_production and settings.json_logs


def test_the_graph_base_follows_the_sandbox_port_outside_production():
    """`SANDBOX_PORT=9100 make run` moves the sandbox (Procfile); the platform must call it there, not on 8090."""
    assert Settings.from_env({}).graph_api_base == "http://127.0.0.1:8090"
    assert Settings.from_env({"SANDBOX_PORT": "9100"}).graph_api_base == "http://127.0.0.1:9100"
    moved_but_explicit = {"SANDBOX_PORT": "9100", "WHATSAPP_API_BASE": "http://sandbox:8090/"}
    assert Settings.from_env(moved_but_explicit).graph_api_base == "http://sandbox:8090"
    assert Settings(environment="production", sandbox_port=9100).graph_api_base == "https://graph.facebook.com"
