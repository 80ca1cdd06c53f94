"""An organization's AI endpoint: an admin saves it, the key is stored encrypted and never shown again (only a
hint), a private address is refused, agents cannot change it and another organization does not see it."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from shared import crypto, events
from shared.models import AiSettings
from shared.settings import get_settings, use_settings
from tests.factories import make_org, make_user

URL = "/api/v1/ai-settings"
KEY = "sk-live-0123456789abcdef-wxyz"
SAVED = {"base_url": "https://8.8.8.8/v1", "model": "gpt-4o-mini", "api_key": KEY}


def test_the_key_is_encrypted_at_rest_and_shown_only_as_a_hint(client, db_session, organization, admin_headers):
    saved = client.put(URL, json=SAVED, headers=admin_headers)
    assert saved.status_code == 200, saved.get_json()
    read = client.get(URL, headers=admin_headers)
    for response in (saved, read):
        assert KEY not in response.get_data(as_text=True)
        body = response.get_json()
        assert {k: body[k] for k in ("configured", "base_url", "model", "is_enabled", "has_api_key", "api_key_hint")} \
            == {"configured": True, "base_url": "https://8.8.8.8/v1", "model": "gpt-4o-mini", "is_enabled": True,
                "has_api_key": True, "api_key_hint": "…wxyz"}
    stored = db_session.execute(text("SELECT api_key_encrypted FROM ai_settings WHERE organization_id = :org"),
                                {"org": organization.id}).scalar_one()
    assert KEY not in stored and "0123456789" not in stored
    assert crypto.decrypt(stored) == KEY
    trail = events.events_for(org_id=organization.id, subject_type="organization", subject_id=organization.id)
    [entry] = [e for e in trail if e["event"] == "ai_settings.saved"]
    assert KEY not in str(entry) and entry["data"]["api_key_replaced"] is True


def test_a_later_save_without_the_key_keeps_it_and_the_first_save_needs_one(client, db_session, organization,
                                                                           admin_headers):
    first = client.put(URL, json={"base_url": "https://8.8.8.8/v1", "model": "gpt-4o-mini"}, headers=admin_headers)
    assert first.status_code == 422 and first.get_json()["code"] == "ai_api_key_required"
    client.put(URL, json=SAVED, headers=admin_headers)
    changed = client.put(URL, json={"base_url": "https://1.1.1.1/v1", "model": "llama-3", "is_enabled": False},
                         headers=admin_headers)
    assert changed.status_code == 200
    assert changed.get_json() | {"updated_at": None} == {
        "configured": True, "base_url": "https://1.1.1.1/v1", "model": "llama-3", "is_enabled": False,
        "has_api_key": True, "api_key_hint": "…wxyz", "updated_at": None}
    row = db_session.query(AiSettings).filter_by(organization_id=organization.id).one()
    assert crypto.decrypt(row.api_key_encrypted) == KEY


def test_nothing_saved_reads_as_not_configured_and_delete_forgets_it(client, organization, admin_headers):
    assert client.get(URL, headers=admin_headers).get_json()["configured"] is False
    client.put(URL, json=SAVED, headers=admin_headers)
    assert client.delete(URL, headers=admin_headers).status_code == 204
    assert client.get(URL, headers=admin_headers).get_json() == {
        "configured": False, "base_url": None, "model": None, "is_enabled": False, "has_api_key": False,
        "api_key_hint": None, "updated_at": None}
    assert client.delete(URL, headers=admin_headers).status_code == 204  # nothing to delete is fine


@pytest.mark.parametrize("base_url", ["http://10.0.0.5/v1", "http://169.254.169.254/latest", "http://127.0.0.1:8090/ai/v1",
                                      "http://localhost:11434/v1"])
def test_a_private_base_url_is_refused_unless_allowed(client, organization, admin_headers, base_url):
    refused = client.put(URL, json={**SAVED, "base_url": base_url}, headers=admin_headers)
    assert refused.status_code == 422 and refused.get_json()["code"] == "url_not_allowed"
    assert client.get(URL, headers=admin_headers).get_json()["configured"] is False
    original = get_settings()
    use_settings(original.with_overrides(outbound_allowed_hosts=("10.0.0.0/8", "127.0.0.1", "169.254.169.254",
                                                                  "localhost")))
    try:
        assert client.put(URL, json={**SAVED, "base_url": base_url}, headers=admin_headers).status_code == 200
    finally:
        use_settings(original)


@pytest.mark.parametrize("role", ["agent", "viewer"])
def test_only_admins_read_or_change_it(client, db_session, organization, admin_headers, login, role):
    client.put(URL, json=SAVED, headers=admin_headers)
    headers = login(make_user(db_session, organization, role=role))
    for method in ("GET", "PUT", "DELETE"):
        response = client.open(URL, method=method, json={**SAVED, "model": "mine"}, headers=headers)
        assert response.status_code == 403 and response.get_json()["code"] == "permission_denied"
    assert client.get(URL, headers=admin_headers).get_json()["model"] == "gpt-4o-mini"


def test_another_organization_neither_sees_nor_changes_it(client, db_session, organization, admin_headers, login):
    client.put(URL, json=SAVED, headers=admin_headers)
    theirs = login(make_user(db_session, make_org(db_session, name="Other Co"), role="org_admin"))
    seen = client.get(URL, headers=theirs)
    assert seen.status_code == 200 and seen.get_json()["configured"] is False
    assert "8.8.8.8" not in seen.get_data(as_text=True)
    assert client.delete(URL, headers=theirs).status_code == 204
    assert client.get(URL, headers=admin_headers).get_json()["base_url"] == "https://8.8.8.8/v1"


def test_rotate_secrets_reencrypts_the_ai_key_with_the_new_key(db_session, organization):
    """`python -m shared.cli rotate-secrets` covers AI keys too, so dropping the old key afterwards loses none."""
    from cryptography.fernet import Fernet

    from shared.cli import main
    from shared.services import ai_settings

    original = get_settings()
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    try:
        use_settings(original.with_overrides(encryption_keys=(old_key,)))
        ai_settings.save_ai_settings(db_session, org_id=organization.id, **SAVED, actor_id=None)
        db_session.commit()  # the command's own unit of work sees it (a SAVEPOINT of the test's transaction)
        use_settings(original.with_overrides(encryption_keys=(new_key, old_key)))
        assert main(["rotate-secrets"]) == 0
        use_settings(original.with_overrides(encryption_keys=(new_key,)))  # the old key is gone
        db_session.expire_all()
        assert ai_settings.ai_endpoint(db_session, org_id=organization.id).api_key == KEY
    finally:
        use_settings(original)
