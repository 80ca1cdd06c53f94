import os

from shared import embedded


def test_with_every_url_set_nothing_embedded_starts(tmp_path):
    configured = {
        "DATABASE_URL": "postgresql+psycopg://db.example/pytake",
        "REDIS_URL": "redis://cache.example:6379/0",
        "MONGODB_URL": "mongodb://docs.example:27017",
    }
    with embedded.embedded_engines(tmp_path, configured) as urls:
        assert urls == configured
    assert list(tmp_path.iterdir()) == []  # no engine wrote anything


def test_env_file_fills_only_what_the_environment_lacks(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nPYTAKE_T1=from-file\nPYTAKE_T2=from-file\nPYTAKE_T3=\nexport PYTAKE_T4='quoted'\n")
    monkeypatch.setenv("PYTAKE_T2", "from-env")
    for name in ("PYTAKE_T1", "PYTAKE_T3", "PYTAKE_T4"):
        monkeypatch.delenv(name, raising=False)
    embedded.load_env_file(env_file)
    assert os.environ["PYTAKE_T1"] == "from-file"
    assert os.environ["PYTAKE_T2"] == "from-env"
    assert "PYTAKE_T3" not in os.environ
    assert os.environ["PYTAKE_T4"] == "quoted"
    for name in ("PYTAKE_T1", "PYTAKE_T4"):
        monkeypatch.delenv(name)
