"""Users and departments inside an organization."""

from tests.factories import make_user


def test_org_admin_manages_users(client, db_session, organization, admin, admin_headers):
    created = client.post(
        "/api/v1/users/",
        json={"email": "Agent@Example.com", "password": "Password123!", "full_name": "Ana", "role": "agent",
              "max_open_conversations": 8},
        headers=admin_headers,
    )
    assert created.status_code == 201, created.get_json()
    agent = created.get_json()
    assert (agent["email"], agent["role"], agent["availability"]) == ("agent@example.com", "agent", "offline")
    assert "password" not in agent and "password_hash" not in agent

    listed = client.get("/api/v1/users?role=agent", headers=admin_headers).get_json()
    assert [u["id"] for u in listed] == [agent["id"]]
    updated = client.patch(
        f"/api/v1/users/{agent['id']}", json={"role": "viewer", "availability": "away"}, headers=admin_headers
    ).get_json()
    assert (updated["role"], updated["availability"]) == ("viewer", "away")

    assert client.delete(f"/api/v1/users/{agent['id']}", headers=admin_headers).status_code == 204
    assert client.get(f"/api/v1/users/{agent['id']}", headers=admin_headers).status_code == 404


def test_an_org_admin_cannot_grant_super_admin_or_lock_itself_out(client, admin, admin_headers):
    promote = client.post(
        "/api/v1/users",
        json={"email": "x@example.com", "password": "Password123!", "full_name": "X", "role": "super_admin"},
        headers=admin_headers,
    )
    assert promote.status_code == 403
    for method, url, body in [
        ("POST", f"/api/v1/users/{admin.id}/deactivate", None),
        ("DELETE", f"/api/v1/users/{admin.id}", None),
        ("PATCH", f"/api/v1/users/{admin.id}", {"role": "viewer"}),
    ]:
        response = client.open(url, method=method, json=body, headers=admin_headers)
        assert response.status_code == 409, (method, url)


def test_a_role_change_signs_the_user_out(client, db_session, organization, admin_headers, login):
    agent = make_user(db_session, organization, role="agent")
    headers = login(agent)
    client.patch(f"/api/v1/users/{agent.id}", json={"role": "viewer"}, headers=admin_headers)
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_departments_and_membership(client, db_session, organization, admin_headers):
    agent = make_user(db_session, organization, role="agent")
    sales = client.post("/api/v1/departments", json={"name": "Sales"}, headers=admin_headers).get_json()
    support = client.post("/api/v1/departments/", json={"name": "Support"}, headers=admin_headers).get_json()
    duplicate = client.post("/api/v1/departments", json={"name": "Sales"}, headers=admin_headers)
    assert (duplicate.status_code, duplicate.get_json()["code"]) == (409, "department_name_taken")

    for department in (sales, support):  # a user can be in several
        added = client.put(f"/api/v1/departments/{department['id']}/members/{agent.id}", headers=admin_headers)
        assert added.status_code == 200
    again = client.put(f"/api/v1/departments/{sales['id']}/members/{agent.id}", headers=admin_headers).get_json()
    assert [m["id"] for m in again["members"]] == [str(agent.id)]  # adding twice changes nothing

    user = client.get(f"/api/v1/users/{agent.id}", headers=admin_headers).get_json()
    assert sorted(d["name"] for d in user["departments"]) == ["Sales", "Support"]
    listed = {d["name"]: d["member_count"] for d in client.get("/api/v1/departments", headers=admin_headers).get_json()}
    assert listed == {"Sales": 1, "Support": 1}

    removed = client.delete(f"/api/v1/departments/{sales['id']}/members/{agent.id}", headers=admin_headers)
    assert removed.get_json()["members"] == []
    renamed = client.patch(f"/api/v1/departments/{support['id']}", json={"name": "Customer care"}, headers=admin_headers)
    assert renamed.get_json()["name"] == "Customer care"
    assert client.delete(f"/api/v1/departments/{support['id']}", headers=admin_headers).status_code == 204
    assert client.get(f"/api/v1/departments/{support['id']}", headers=admin_headers).status_code == 404
    # the name is free again once the department is deleted
    assert client.post("/api/v1/departments", json={"name": "Customer care"}, headers=admin_headers).status_code == 201
