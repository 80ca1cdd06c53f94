"""Another organization's rows do not exist for you: every id-taking endpoint answers 404, lists never show them.

Built from the app's routes, so endpoints added later are covered as soon as they exist.
"""

import re

import pytest

from shared.services import jobs
from tests.factories import make_department, make_org, make_user
from tests.unit.test_rbac_matrix import ENDPOINTS, call, fill, tenant_rows

TENANT_IDS = {"org_id", "user_id", "department_id", "job_id", "contact_id", "tag_id", "segment_id", "import_id", "key", "number_id", "template_id", "conversation_id", "message_id", "chatbot_id"}
BY_ID = [
    (method, path)
    for method, path, _ in ENDPOINTS
    if TENANT_IDS & set(re.findall(r"<(?:\w+:)?(\w+)>", path))
]
LISTS = [path for method, path, _ in ENDPOINTS if method == "GET" and not re.search(r"<\w+>", path)]


@pytest.fixture
def two_tenants(db_session, login):
    theirs = make_org(db_session, name="Theirs")
    their_user = make_user(db_session, theirs, role="agent")
    their_department = make_department(db_session, theirs, name="Their team")
    their_department.members.append(their_user)
    their_job, _ = jobs.create_job(db_session, org_id=theirs.id, kind="contacts.export", task_name="maintenance.x")

    mine = make_org(db_session, name="Mine")
    me = make_user(db_session, mine, role="org_admin")  # every permission inside my organization
    their_ids = {
        "org_id": theirs.id,
        "user_id": their_user.id,
        "department_id": their_department.id,
        "job_id": their_job.id,
        "code": "starter",
        **tenant_rows(db_session, theirs),
    }
    return login(me), their_ids


def test_the_endpoints_taking_ids_are_all_covered():
    assert len(BY_ID) >= 15


@pytest.mark.parametrize("method,path", BY_ID, ids=[f"{m} {p}" for m, p in BY_ID])
def test_another_organizations_id_is_404(client, two_tenants, method, path):
    headers, their_ids = two_tenants
    response = call(client, method, fill(path, their_ids), headers)
    assert response.status_code in (404, 403), response.get_json()
    # 403 only where the endpoint is platform staff's alone (org_admin lacks the permission everywhere)
    if response.status_code == 403:
        assert response.get_json()["code"] == "permission_denied"
    else:
        assert response.get_json()["code"].endswith("not_found")


@pytest.mark.parametrize("path", LISTS)
def test_lists_never_show_another_organizations_rows(client, two_tenants, path):
    headers, their_ids = two_tenants
    response = client.get(path, headers=headers)
    if response.status_code == 403:
        return  # platform-wide lists are super_admin's (checked by the RBAC matrix)
    assert response.status_code == 200, response.get_json()
    text = response.get_data(as_text=True)
    for name, value in their_ids.items():
        if name not in ("code", "key", "token", "version"):  # a version is a small number, found in any text
            assert str(value) not in text, f"{path} shows their {name}"
