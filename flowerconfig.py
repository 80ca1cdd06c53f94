"""Flower's settings: basic auth from PyTake's settings (FLOWER_USER / FLOWER_PASSWORD)."""

from shared.settings import get_settings

_settings = get_settings()
basic_auth = [f"{_settings.flower_user}:{_settings.flower_password}"]
purge_offline_workers = 300
