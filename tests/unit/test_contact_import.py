"""CSV import: the documented counts and error report, the same state on a second run, plan limits; and export."""

import csv
import io

import pytest
from sqlalchemy import func, select

from shared.models import AttributeType, ConsentEvent, Contact, Job
from shared.services import attributes, contacts
from tests.factories import make_org, make_user
from workers.tasks.contacts import export_contacts, import_contacts

# Latin-1, semicolons, an unknown column ("Cor favorita"), every kind of trouble.
ROWS = [
    "Telefone;Nome;Email;Etiquetas;Aceita ofertas;Cor favorita;Plano",
    "+55 11 98765-4321;Ana;ana@example.com;vip|sp;sim;azul;gold",   # 2 create, opted in
    "551187654321;Ana de novo;;;;;",                                 # 3 same person as row 2 (old Brazilian form)
    "12345;Curto;;;;;",                                              # 4 invalid number
    "+1 650 555 0001;Existing Person;;;;;silver",                    # 5 already a contact
    "telefone?;Nada;;;;;",                                           # 6 not a number
    "+16505550002;Zé Ñoño;ze@example.com;;não;verde;silver",         # 7 create (Latin-1 text), not opted in
    "(650) 555-0002;Zé again;;;;;",                                  # 8 same person as row 7
    "+16505550003;Bad Email;not-an-email;;;;",                       # 9 invalid email
    ";;;;;;",                                                        # blank: ignored
]
MAPPING = {
    "Telefone": "phone", "Nome": "name", "Email": "email", "Etiquetas": "tags",
    "Aceita ofertas": "marketing_opt_in", "Plano": "attribute:plan",
}


def csv_bytes(rows=ROWS, encoding="latin-1") -> bytes:
    return ("\r\n".join(rows) + "\r\n").encode(encoding)


@pytest.fixture
def importing(client, db_session, organization, admin_headers):
    organization.default_country = "US"  # "(650) 555-0002" is local; "551187654321" still reads as international
    attributes.create_definition(db_session, org_id=organization.id, key="plan", label="Plan", type=AttributeType.text)
    contacts.create_contact(db_session, org=organization, phone="+16505550001", name="Existing Person")

    def upload(data=None, filename="clientes.csv"):
        response = client.post(
            "/api/v1/contacts/imports", data={"file": (io.BytesIO(data or csv_bytes()), filename)},
            headers=admin_headers, content_type="multipart/form-data",
        )
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    def run(import_id, mode="skip_existing", columns=MAPPING):
        started = client.post(
            f"/api/v1/contacts/imports/{import_id}/start", json={"columns": columns, "mode": mode}, headers=admin_headers
        )
        assert started.status_code == 202, started.get_json()
        job = db_session.get(Job, started.get_json()["job_id"])
        return import_contacts.body(db_session, job, lambda *a: None)

    return upload, run


def state(db_session, org_id):
    rows = db_session.execute(
        select(Contact.phone_e164, Contact.name, Contact.email, Contact.marketing_consent, Contact.custom_attributes)
        .where(Contact.organization_id == org_id).order_by(Contact.phone_e164)
    ).all()
    consents = db_session.execute(select(func.count()).select_from(ConsentEvent)).scalar_one()
    return rows, consents


def test_upload_detects_encoding_delimiter_and_columns(importing):
    upload, _ = importing
    record = upload()
    assert (record["encoding"], record["delimiter"]) == ("latin-1", ";")
    assert record["headers"][:2] == ["Telefone", "Nome"]
    assert record["sample"][0][:2] == ["+55 11 98765-4321", "Ana"]
    assert record["sample"][5][1] == "Zé Ñoño"


def test_preview_shows_what_each_row_would_do(client, importing, admin_headers):
    upload, _ = importing
    record = upload()
    preview = client.post(
        f"/api/v1/contacts/imports/{record['id']}/preview", json={"columns": MAPPING}, headers=admin_headers
    ).get_json()
    assert [(r["row"], r["action"]) for r in preview["rows"]] == [
        (2, "create"), (3, "skip"), (4, "invalid"), (5, "skip"), (6, "invalid"), (7, "create"),
        (8, "skip"), (9, "invalid"),
    ]
    assert preview["ignored_columns"] == ["Cor favorita"]


def test_a_mapping_that_does_not_fit_is_refused(client, importing, admin_headers):
    upload, _ = importing
    record = upload()
    response = client.post(
        f"/api/v1/contacts/imports/{record['id']}/preview",
        json={"columns": {"Nome": "name", "Nope": "email", "Plano": "attribute:unknown"}}, headers=admin_headers,
    )
    errors = response.get_json()["details"]["errors"]
    assert response.status_code == 422 and set(errors) == {"Nope", "Plano", "phone"}


def test_import_counts_report_and_a_second_run_changes_nothing(client, db_session, organization, importing, admin_headers):
    upload, run = importing
    record = upload()
    result = run(record["id"])
    assert result == {
        "rows": 8, "created": 2, "updated": 0, "unchanged": 0, "skipped_existing": 1, "duplicates_in_file": 2,
        "invalid": 3, "over_plan_limit": 0, "opted_in": 1, "errors": 5, "has_report": True,
    }
    ana = contacts.find_by_phone(db_session, org_id=organization.id, identity_key="551187654321")
    assert (ana.name, ana.email, ana.custom_attributes) == ("Ana", "ana@example.com", {"plan": "gold"})
    assert sorted(t.name for t in ana.tags) == ["sp", "vip"] and ana.marketing_consent.value == "opted_in"

    report = client.get(f"/api/v1/contacts/imports/{record['id']}/report", headers=admin_headers)
    assert report.status_code == 200 and report.mimetype == "text/csv"
    lines = list(csv.reader(io.StringIO(report.get_data(as_text=True))))
    assert lines[0] == ["row", "column", "value", "reason"]
    assert [(int(r[0]), r[3]) for r in lines[1:]] == [
        (3, "duplicate_in_file (same person as row 2)"), (4, "invalid_number"), (6, "unparseable"),
        (8, "duplicate_in_file (same person as row 7)"), (9, "invalid_email"),
    ]

    before = state(db_session, organization.id)
    again = run(upload()["id"])
    assert (again["created"], again["skipped_existing"], again["opted_in"]) == (0, 3, 0)
    assert state(db_session, organization.id) == before


def test_update_existing_fills_in_and_then_finds_nothing_to_change(db_session, organization, importing):
    upload, run = importing
    first = run(upload()["id"], mode="update_existing")
    assert (first["created"], first["updated"]) == (2, 1)
    existing = contacts.find_by_phone(db_session, org_id=organization.id, identity_key="16505550001")
    db_session.refresh(existing)
    assert existing.custom_attributes == {"plan": "silver"}
    second = run(upload()["id"], mode="update_existing")
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 0, 3)


def test_an_opt_in_reaches_an_existing_contact_only_when_updating(db_session, organization, importing):
    """Issue 10: skipping a contact left its profile alone but still recorded the file's consent for it."""
    upload, run = importing
    opting_in = csv_bytes(["Telefone;Aceita ofertas", "+16505550001;sim"])
    existing = contacts.find_by_phone(db_session, org_id=organization.id, identity_key="16505550001")

    def consent_events():
        return db_session.execute(
            select(func.count()).select_from(ConsentEvent).where(ConsentEvent.contact_id == existing.id)
        ).scalar_one()

    columns = {"Telefone": "phone", "Aceita ofertas": "marketing_opt_in"}
    skipped = run(upload(opting_in)["id"], columns=columns)
    db_session.refresh(existing)
    assert (skipped["skipped_existing"], skipped["opted_in"]) == (1, 0)
    assert (existing.marketing_consent.value, consent_events()) == ("unknown", 0)

    updated = run(upload(opting_in)["id"], mode="update_existing", columns=columns)
    db_session.refresh(existing)
    assert updated["opted_in"] == 1
    assert (existing.marketing_consent.value, consent_events()) == ("opted_in", 1)


def test_utf8_with_bom_and_commas(client, db_session, organization, importing):
    upload, run = importing
    rows = ["\ufeffTelefone,Nome", "+5521998765432,Joana D'Arc", "+5521998765433,Zoë"]
    record = upload(("\n".join(rows)).encode("utf-8"))
    assert (record["encoding"], record["delimiter"], record["headers"]) == ("utf-8-sig", ",", ["Telefone", "Nome"])
    assert run(record["id"], columns={"Telefone": "phone", "Nome": "name"})["created"] == 2
    names = set(db_session.execute(select(Contact.name).where(Contact.organization_id == organization.id)).scalars())
    assert {"Joana D'Arc", "Zoë"} <= names


def test_names_and_tags_are_stored_as_written_whatever_their_characters(db_session, organization, importing):
    upload, run = importing
    names = ['Ana "Nana" Souza, Jr.', "Line one\nline two", "Back\\slash\ttab", "Carriage\rreturn", "\\."]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["phone", "name", "tags"])
    writer.writerows([f"+5521998760{n:03d}", name, 'a "b", c; d|e'] for n, name in enumerate(names))
    record = upload(buffer.getvalue().encode("utf-8"))
    result = run(record["id"], columns={"phone": "phone", "name": "name", "tags": "tags"})
    assert (result["created"], result["invalid"]) == (len(names), 0)
    stored = db_session.execute(
        select(Contact).where(Contact.organization_id == organization.id, Contact.phone_e164.like("+5521998760%"))
        .order_by(Contact.phone_e164)
    ).scalars().all()
    assert [contact.name for contact in stored] == names
    assert sorted(tag.name for tag in stored[0].tags) == ['a "b", c; d', "e"]


def test_tags_reach_new_and_existing_contacts_in_both_modes_across_chunks(db_session, organization, importing,
                                                                         monkeypatch):
    """New contacts take their tags in the insert's own statement; existing ones are found and tagged after it."""
    from shared.services import contact_import

    monkeypatch.setattr(contact_import, "CHUNK", 2)  # several chunks: tags known from earlier chunks, new ones later
    upload, run = importing
    existing = contacts.find_by_phone(db_session, org_id=organization.id, identity_key="16505550001")
    contacts.create_contact(db_session, org=organization, phone="+16505550020", tag_names=["vip"])
    columns = {"Telefone": "phone", "Etiquetas": "tags", "Aceita ofertas": "marketing_opt_in"}

    def tags_of():
        db_session.expire_all()
        found = db_session.execute(select(Contact).where(Contact.organization_id == organization.id)).scalars()
        return {c.phone_e164: sorted(t.name for t in c.tags) for c in found}

    first = csv_bytes(["Telefone;Etiquetas;Aceita ofertas", "+16505550001;vip|sp;", "+16505550010;vip|vip;sim",
                       "+16505550011;rj;", "+16505550012;;sim", "+16505550020;vip, rj;", "+16505550013;sp,new;"])
    result = run(upload(first)["id"], columns=columns)
    assert (result["created"], result["skipped_existing"], result["opted_in"], result["updated"]) == (4, 2, 2, 0)
    assert tags_of() == {
        "+16505550001": ["sp", "vip"], "+16505550010": ["vip"], "+16505550011": ["rj"], "+16505550012": [],
        "+16505550020": ["rj", "vip"], "+16505550013": ["new", "sp"],
    }
    assert existing.marketing_consent.value == "unknown"

    second = csv_bytes(["Telefone;Etiquetas;Aceita ofertas", "+16505550001;later|vip;sim", "+16505550014;later;",
                        "+16505550012;;sim", "+16505550010;;"])
    result = run(upload(second)["id"], mode="update_existing", columns=columns)
    assert (result["created"], result["unchanged"], result["opted_in"], result["skipped_existing"]) == (1, 3, 1, 0)
    tags = tags_of()
    assert (tags["+16505550001"], tags["+16505550014"], tags["+16505550010"]) == (["later", "sp", "vip"], ["later"],
                                                                                  ["vip"])
    db_session.refresh(existing)
    assert existing.marketing_consent.value == "opted_in"


def test_the_plan_limit_holds_on_import_and_the_rest_is_reported(client, db_session, login):
    org = make_org(db_session, plan_code="free")
    org.plan.max_contacts = 1
    headers = login(make_user(db_session, org, role="org_admin"))
    data = "\n".join(["phone", "+16505550301", "+16505550302", "+16505550303"]).encode()
    record = client.post("/api/v1/contacts/imports", data={"file": (io.BytesIO(data), "a.csv")}, headers=headers,
                         content_type="multipart/form-data").get_json()
    started = client.post(f"/api/v1/contacts/imports/{record['id']}/start", json={"columns": {"phone": "phone"}},
                          headers=headers).get_json()
    result = import_contacts.body(db_session, db_session.get(Job, started["job_id"]), lambda *a: None)
    assert (result["created"], result["over_plan_limit"]) == (1, 2)
    report = client.get(f"/api/v1/contacts/imports/{record['id']}/report", headers=headers).get_data(as_text=True)
    assert report.count("plan_limit_exceeded") == 2


def test_contacts_that_exist_already_take_no_room_under_the_plan_limit(client, db_session, login):
    org = make_org(db_session, plan_code="free")
    org.plan.max_contacts = 2
    contacts.create_contact(db_session, org=org, phone="+16505550301", name="Existing")
    headers = login(make_user(db_session, org, role="org_admin"))
    data = "\n".join(["phone", "+16505550302", "+16505550301", "+16505550303"]).encode()
    record = client.post("/api/v1/contacts/imports", data={"file": (io.BytesIO(data), "a.csv")}, headers=headers,
                         content_type="multipart/form-data").get_json()
    started = client.post(f"/api/v1/contacts/imports/{record['id']}/start", json={"columns": {"phone": "phone"}},
                          headers=headers).get_json()
    result = import_contacts.body(db_session, db_session.get(Job, started["job_id"]), lambda *a: None)
    assert (result["created"], result["skipped_existing"], result["over_plan_limit"]) == (1, 1, 1)
    report = client.get(f"/api/v1/contacts/imports/{record['id']}/report", headers=headers).get_data(as_text=True)
    assert "+16505550303" in report and "+16505550302" not in report


def test_uploads_must_be_multipart_and_not_empty(client, importing, admin_headers):
    as_json = client.post("/api/v1/contacts/imports", json={"file": "x"}, headers=admin_headers)
    assert as_json.status_code == 415
    empty = client.post("/api/v1/contacts/imports", data={"file": (io.BytesIO(b""), "e.csv")}, headers=admin_headers,
                        content_type="multipart/form-data")
    assert (empty.status_code, empty.get_json()["code"]) == (422, "invalid_file")
    image = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0e\x00\x00\x00/\x00\x00\x00"  # found by the fuzzer: it was a 500
    binary = client.post("/api/v1/contacts/imports", data={"file": (io.BytesIO(image), "photo.webp")},
                         headers=admin_headers, content_type="multipart/form-data")
    assert (binary.status_code, binary.get_json()["code"]) == (422, "invalid_file")
    assert "binary" in binary.get_json()["message"]


def test_export_writes_the_filtered_contacts_behind_an_expiring_link(client, db_session, organization, importing,
                                                                     admin_headers):
    upload, run = importing
    run(upload()["id"])
    started = client.post("/api/v1/contacts/exports", json={"filter": {"tags_any": ["vip"]}}, headers=admin_headers)
    assert started.status_code == 202
    result = export_contacts.body(db_session, db_session.get(Job, started.get_json()["job_id"]), lambda *a: None)
    assert result["rows"] == 1
    download = client.get(result["download_url"])  # no bearer token: the link is the credential
    assert download.status_code == 200 and "attachment" in download.headers["Content-Disposition"]
    lines = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    assert [(l["phone"], l["tags"], l["attribute:plan"], l["marketing_consent"]) for l in lines] == [
        ("+5511987654321", "sp|vip", "gold", "opted_in")
    ]
    forged = client.get(result["download_url"][:-3] + "xyz")
    assert forged.status_code == 404


def test_an_import_that_fails_midway_stops_reading_the_file():
    from shared.services.contact_import import _read_ahead

    read = []

    def chunks():
        for number in range(1000):
            read.append(number)
            yield number

    ahead = _read_ahead(chunks())
    next(ahead)
    ahead.close()  # the writer failed: the parser thread must not go on through the file
    assert len(read) < 100


def test_the_import_hands_the_gil_back_quickly_and_restores_the_switch_interval():
    import sys

    from shared.services.contact_import import SWITCH_INTERVAL, _read_ahead

    before = sys.getswitchinterval()
    ahead = _read_ahead(iter(range(3)))
    assert next(ahead) == 0 and sys.getswitchinterval() == min(before, SWITCH_INTERVAL)
    ahead.close()
    assert sys.getswitchinterval() == before
