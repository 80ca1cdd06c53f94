"""Contacts through the API: identity, consent, eligibility, filters, segments, plan limits, bulk."""

import datetime as dt

import pytest

from shared.models import AttributeType, Contact
from shared.models.base import utcnow
from shared.services import attributes, contacts
from tests.factories import make_org, make_user


def create(client, headers, **body):
    response = client.post("/api/v1/contacts/", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_normalizes_and_refuses_the_same_person_twice(client, admin_headers):
    ana = create(client, admin_headers, phone="+55 11 98765-4321", name="Ana", tags=["vip", "sp"])
    assert (ana["phone"], ana["wa_id"], ana["lifecycle_stage"]) == ("+5511987654321", "5511987654321", "lead")
    assert [tag["name"] for tag in ana["tags"]] == ["sp", "vip"]
    again = client.post("/api/v1/contacts", json={"phone": "551187654321"}, headers=admin_headers)
    assert (again.status_code, again.get_json()["code"]) == (409, "contact_exists")
    assert again.get_json()["details"]["contact_id"] == ana["id"]


def test_bad_input_is_a_clear_422(client, admin_headers):
    for body, code in [
        ({"phone": "12"}, "invalid_phone"),
        ({"phone": "+5511987654321", "email": "nope"}, "invalid_email"),
        ({"phone": "+5511987654321", "lifecycle_stage": "vip"}, "invalid_lifecycle_stage"),
        ({"phone": "+5511987654321", "custom_attributes": {"undefined": 1}}, "invalid_attribute"),
    ]:
        response = client.post("/api/v1/contacts", json=body, headers=admin_headers)
        assert (response.status_code, response.get_json()["code"]) == (422, code), body


def test_local_numbers_use_the_organizations_country(client, db_session, organization, admin_headers):
    organization.default_country = "BR"
    db_session.flush()
    assert create(client, admin_headers, phone="(21) 99876-5432")["phone"] == "+5521998765432"


def test_opt_out_and_block_make_a_contact_ineligible_with_the_reason(client, admin, admin_headers):
    contact = create(client, admin_headers, phone="+16505550101")
    url = f"/api/v1/contacts/{contact['id']}"
    assert client.get(f"{url}/eligibility?category=marketing", headers=admin_headers).get_json()["reason"] == "no_opt_in"

    client.post(f"{url}/opt-in", json={"scope": "marketing", "source": "api", "evidence": "signup form v2"}, headers=admin_headers)
    assert client.get(f"{url}/eligibility", headers=admin_headers).get_json() == {
        "category": "marketing", "eligible": True, "reason": None, "message": None
    }
    client.post(f"{url}/opt-out", json={"scope": "all", "source": "agent", "evidence": "asked by phone"}, headers=admin_headers)
    for category in ("marketing", "utility"):
        verdict = client.get(f"{url}/eligibility?category={category}", headers=admin_headers).get_json()
        assert (verdict["eligible"], verdict["reason"]) == (False, "opted_out")
    assert client.get(f"{url}/eligibility?category=service", headers=admin_headers).get_json()["eligible"] is True

    client.post(f"{url}/block", headers=admin_headers)
    verdict = client.get(f"{url}/eligibility?category=service", headers=admin_headers).get_json()
    assert (verdict["eligible"], verdict["reason"]) == (False, "blocked")

    history = client.get(f"{url}/consent", headers=admin_headers).get_json()
    assert [(e["action"], e["scope"], e["source"]) for e in history] == [
        ("opt_out", "all", "agent"), ("opt_in", "marketing", "api")
    ]
    assert history[0]["actor_user_id"] == str(admin.id) and history[0]["actor"] == admin.email
    assert history[0]["evidence"] == "asked by phone" and history[0]["occurred_at"]


def test_a_deleted_contact_is_gone_and_ineligible(client, db_session, organization, admin_headers):
    contact = create(client, admin_headers, phone="+16505550102")
    assert client.delete(f"/api/v1/contacts/{contact['id']}", headers=admin_headers).status_code == 204
    assert client.get(f"/api/v1/contacts/{contact['id']}", headers=admin_headers).status_code == 404
    # the number can be a contact again
    create(client, admin_headers, phone="+16505550102")


def test_the_plan_limit_holds_on_create(client, db_session, login):
    org = make_org(db_session, plan_code="free")
    org.plan.max_contacts = 2
    headers = login(make_user(db_session, org, role="agent"))
    for n in range(2):
        create(client, headers, phone=f"+1650555020{n}")
    over = client.post("/api/v1/contacts", json={"phone": "+16505550209"}, headers=headers)
    assert (over.status_code, over.get_json()["code"]) == (403, "plan_limit_exceeded")
    assert over.get_json()["details"]["limit"] == 2 and over.get_json()["details"]["current_usage"] == 2


@pytest.fixture
def seeded(db_session, organization):
    """Eight contacts with known tags, stages, scores, consent, attributes and activity."""
    for key, kind in [("plan", AttributeType.text), ("spend", AttributeType.number), ("renewal", AttributeType.date)]:
        attributes.create_definition(db_session, org_id=organization.id, key=key, label=key.title(), type=kind)
    now = utcnow()
    rows = [
        ("ana", "+16505550001", ["vip", "sp"], "customer", 80, {"plan": "gold", "spend": 1200, "renewal": "2027-01-10"}, 1),
        ("bruno", "+16505550002", ["vip"], "lead", 10, {"plan": "silver", "spend": 90}, 40),
        ("carla", "+16505550003", ["sp"], "prospect", 55, {"plan": "gold"}, None),
        ("davi", "+16505550004", [], "churned", 0, {}, 200),
        ("eva", "+16505550005", ["vip", "rj"], "customer", 95, {"spend": 5000, "renewal": "2026-12-01"}, 2),
        ("fabio", "+16505550006", ["rj"], "lead", 30, {"plan": "bronze"}, None),
        ("gabi", "+16505550007", ["sp", "rj"], "prospect", 70, {"plan": "gold", "spend": 300}, 5),
        ("hugo", "+16505550008", [], "lead", 20, {}, None),
    ]
    made = {}
    for name, phone, tag_names, stage, score, attrs, days_ago in rows:
        contact = contacts.create_contact(
            db_session, org=organization, phone=phone, name=name.title(), tag_names=tag_names,
            lifecycle_stage=stage, lead_score=score, custom_attributes=attrs,
        )
        contact.last_inbound_at = now - dt.timedelta(days=days_ago) if days_ago is not None else None
        made[name] = contact
    made["davi"].blocked_at = now
    made["eva"].marketing_consent = "opted_in"
    made["gabi"].marketing_consent = "opted_in"
    made["fabio"].marketing_consent = "opted_out"
    db_session.flush()
    return made


FILTERS = [
    ("tags_any=vip", {"ana", "bruno", "eva"}),
    ("tags_all=sp,rj", {"gabi"}),
    ("tags_none=vip,rj", {"carla", "davi", "hugo"}),
    ("lifecycle_stages=customer,prospect", {"ana", "carla", "eva", "gabi"}),
    ("marketing_consent=opted_in", {"eva", "gabi"}),
    ("blocked=true", {"davi"}),
    ("lead_score_min=50&lead_score_max=90", {"ana", "carla", "gabi"}),
    ("attr=plan:eq:gold", {"ana", "carla", "gabi"}),
    ("attr=plan:neq:gold&attr=plan:exists", {"bruno", "fabio"}),
    ("attr=spend:gte:300", {"ana", "eva", "gabi"}),
    ("attr=renewal:lt:2027-01-01", {"eva"}),
    ("attr=plan:contains:ILV", {"bruno"}),
    ("q=gab", {"gabi"}),
    ("q=5550004", {"davi"}),
    ("tags_any=sp&marketing_consent=opted_in&lead_score_min=60", {"gabi"}),
]


@pytest.mark.parametrize("query,expected", FILTERS, ids=[q for q, _ in FILTERS])
def test_filters_return_exactly_the_expected_contacts(client, admin_headers, seeded, query, expected):
    response = client.get(f"/api/v1/contacts/?{query}&limit=200", headers=admin_headers)
    assert response.status_code == 200, response.get_json()
    assert {item["name"].lower() for item in response.get_json()["items"]} == expected


def test_last_seen_range(client, admin_headers, seeded):
    since = (utcnow() - dt.timedelta(days=10)).isoformat()
    response = client.get("/api/v1/contacts", query_string={"last_seen_after": since}, headers=admin_headers)
    assert {i["name"].lower() for i in response.get_json()["items"]} == {"ana", "eva", "gabi"}


def test_keyset_pages_cover_every_contact_once_in_sort_order(client, admin_headers, seeded):
    seen, cursor = [], None
    while True:
        params = {"sort": "-lead_score", "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/contacts", query_string=params, headers=admin_headers).get_json()
        seen += [item["lead_score"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted((c.lead_score for c in seeded.values()), reverse=True)


def test_an_unknown_attribute_in_a_filter_is_a_clear_error(client, admin_headers, seeded):
    response = client.get("/api/v1/contacts?attr=colour:eq:red", headers=admin_headers)
    assert (response.status_code, response.get_json()["code"]) == (422, "invalid_filter")


def test_segments_count_what_their_list_shows(client, admin_headers, seeded):
    body = {"name": "Warm São Paulo", "filters": {"tags_any": ["sp"], "lead_score_min": 50}}
    segment = client.post("/api/v1/segments/", json=body, headers=admin_headers).get_json()
    members = client.get(f"/api/v1/segments/{segment['id']}/contacts", headers=admin_headers).get_json()["items"]
    assert {m["name"].lower() for m in members} == {"ana", "carla", "gabi"}
    assert segment["contact_count"] == len(members) == 3
    # live: a change in the data changes the count
    client.post(f"/api/v1/contacts/{seeded['hugo'].id}/lead-score", json={"value": 99}, headers=admin_headers)
    client.post("/api/v1/contacts/bulk", json={"action": "tag", "tags": ["sp"], "ids": [str(seeded["hugo"].id)]},
                headers=admin_headers)
    assert client.get(f"/api/v1/segments/{segment['id']}", headers=admin_headers).get_json()["contact_count"] == 4
    listed = client.get("/api/v1/segments", headers=admin_headers).get_json()
    assert [(s["name"], s["contact_count"]) for s in listed] == [("Warm São Paulo", 4)]


def test_tags_list_counts_live_contacts(client, admin_headers, seeded):
    counts = {t["name"]: t["contact_count"] for t in client.get("/api/v1/tags", headers=admin_headers).get_json()}
    assert counts == {"rj": 3, "sp": 3, "vip": 3}


def test_bulk_by_ids_is_immediate_and_by_filter_is_a_job(client, db_session, admin_headers, seeded, published):
    ids = [str(seeded["ana"].id), str(seeded["bruno"].id)]
    done = client.post("/api/v1/contacts/bulk", json={"action": "set_lifecycle", "lifecycle_stage": "customer", "ids": ids},
                       headers=admin_headers)
    assert done.status_code == 200 and done.get_json()["affected"] == 2
    started = client.post(
        "/api/v1/contacts/bulk", json={"action": "untag", "tags": ["vip"], "filter": {"tags_any": ["vip"]}},
        headers=admin_headers,
    )
    assert started.status_code == 202
    job_id = started.get_json()["job_id"]
    assert published[-1] == ("maintenance.bulk_update_contacts", {"job_id": job_id, "org_id": str(seeded["ana"].organization_id)})

    from shared.models import Job
    from workers.tasks.contacts import bulk_update_contacts

    reports = []
    result = bulk_update_contacts.body(db_session, db_session.get(Job, job_id), lambda *a: reports.append(a))
    assert result == {"matched": 3, "affected": 3}
    still_vip = client.get("/api/v1/contacts?tags_any=vip", headers=admin_headers).get_json()["items"]
    assert still_vip == [] and reports[-1][0] == 100


def test_bodies_that_select_contacts_all_say_filters_and_still_take_filter(client, db_session, admin_headers, seeded,
                                                                          published):
    from shared.models import Job
    from workers.tasks.contacts import bulk_update_contacts

    named = client.post("/api/v1/contacts/bulk", json={"action": "untag", "tags": ["vip"],
                                                       "filters": {"tags_any": ["vip"]}}, headers=admin_headers)
    assert named.status_code == 202
    job = db_session.get(Job, named.get_json()["job_id"])
    assert bulk_update_contacts.body(db_session, job, lambda *a: None) == {"matched": 3, "affected": 3}
    exported = client.post("/api/v1/contacts/exports", json={"filters": {"tags_any": ["sp"]}}, headers=admin_headers)
    assert exported.status_code == 202
    assert db_session.get(Job, exported.get_json()["job_id"]).params == {"filters": {"tags_any": ["sp"]}}
    both = client.post("/api/v1/contacts/exports", json={"filters": {}, "filter": {}}, headers=admin_headers)
    assert both.status_code == 422 and "filter" in both.get_json()["details"]["errors"]["json"]
    spec = client.get("/openapi.json").get_json()["components"]["schemas"]
    assert all("filters" in spec[name]["properties"] and "filter" not in spec[name]["properties"]
               for name in ("ExportCreate", "BulkAction", "SegmentCreate"))


def test_lead_scores_beyond_the_column_are_refused_and_moves_stop_at_the_bound(client, admin_headers, seeded):
    # Found by the fuzzer: a filter or score past PostgreSQL's integer was a 500.
    huge = -190755609161
    listed = client.get(f"/api/v1/contacts/?lead_score_max={huge}", headers=admin_headers)
    assert (listed.status_code, listed.get_json()["code"]) == (422, "validation_error")
    scored = f"/api/v1/contacts/{seeded['hugo'].id}/lead-score"
    assert client.post(scored, json={"value": huge}, headers=admin_headers).status_code == 422
    assert client.post(scored, json={"value": 999_999_999}, headers=admin_headers).status_code == 200
    moved = client.post(scored, json={"delta": 1_000_000_000}, headers=admin_headers)
    assert (moved.status_code, moved.get_json()["lead_score"]) == (200, 1_000_000_000)
