"""Contacts pipeline, CSV import: a staged chunk written into the organization's contacts (the job's own thread).

One COPY into a temporary table, then set-wise SQL: new contacts, consent events, updates in
`update_existing` mode, tags, the plan's limit.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.db import driver_connection
from shared.models import Organization
from shared.services import plans
from shared.services.contact_import_rows import RowError, StagedChunk

if TYPE_CHECKING:
    from shared.services.contact_import import Mapping


@dataclass
class Counts:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_existing: int = 0
    duplicates_in_file: int = 0
    invalid: int = 0
    over_plan_limit: int = 0
    opted_in: int = 0
    errors: list[RowError] = field(default_factory=list)

    def add_error(self, error: RowError) -> None:
        self.errors.append(error)
        if error.reason.startswith("duplicate_in_file"):
            self.duplicates_in_file += 1
        else:
            self.invalid += 1

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if k != "errors"}


class ChunkWriter:
    """Writes one staged chunk: one COPY into a temporary table, then set-wise SQL.

    Everything after the COPY (the plan limit, inserts, updates, tags, consent events) runs
    inside PostgreSQL, so the writer's Python does nothing per row. Compiling a VALUES list per
    chunk would cost more than the import.

    PostgreSQL is the slower half of the import (the parser thread keeps ahead of it), so each
    statement runs only when the chunk needs it, and existing contacts are found by one index
    probe per row: a join would hash the organization's every contact for every chunk.
    """

    _STAGE = """
        CREATE TEMP TABLE IF NOT EXISTS import_rows (
            row_number int, identity_key text, phone_e164 text, wa_id text, name text, email text,
            language text, lifecycle_stage text, custom_attributes jsonb, tags text, opt_in boolean,
            contact_id uuid, existing boolean NOT NULL DEFAULT false
        ) ON COMMIT DROP
    """
    _COPY = (
        "COPY import_rows (row_number, identity_key, phone_e164, wa_id, name, email, language, lifecycle_stage, "
        "custom_attributes, tags, opt_in) FROM STDIN (FORMAT csv)"
    )
    # One statement per chunk writes the new contacts, their consent events and their tags: the new
    # contacts' ids never go back into import_rows (an UPDATE of every row of the chunk cost more
    # than the tags themselves). A new contact has no tags yet and a row names a tag once
    # (_split_tags), so their tags need no ON CONFLICT. ON CONFLICT finds the rows that exist already.
    _INSERTED = """
        inserted AS (
            INSERT INTO contacts (organization_id, identity_key, phone_e164, wa_id, name, email, language,
                                  lifecycle_stage, custom_attributes, marketing_consent)
            SELECT :org, identity_key, phone_e164, wa_id, name, email, language, coalesce(lifecycle_stage, 'lead'),
                   coalesce(custom_attributes, '{}'),
                   CASE WHEN opt_in THEN 'opted_in' ELSE 'unknown' END::consent_state
            FROM import_rows
            ON CONFLICT (organization_id, identity_key) WHERE deleted_at IS NULL DO NOTHING
            RETURNING id, identity_key, marketing_consent
        ), consented AS (
            INSERT INTO consent_events (organization_id, contact_id, action, scope, source, actor, evidence)
            SELECT :org, id, 'opt_in', 'marketing', 'import', :actor, :evidence
            FROM inserted WHERE marketing_consent = 'opted_in'
        )"""
    _NEW_TAGS = """, tagged AS (
            INSERT INTO contact_tags (contact_id, tag_id)
            SELECT i.id, t.id
            FROM inserted i JOIN import_rows r ON r.identity_key = i.identity_key
            CROSS JOIN LATERAL unnest(string_to_array(r.tags, '|')) AS wanted(name)
            JOIN tags t ON t.organization_id = :org AND t.name = wanted.name
        )"""
    # The rows that were not inserted, marked with their contact's id when the chunk needs it (tags,
    # update mode): one index probe per existing row. The statement's snapshot predates its inserts.
    _EXISTING = """, existing AS (
            UPDATE import_rows r SET existing = true, contact_id = (
                SELECT c.id FROM contacts c
                WHERE c.organization_id = :org AND c.identity_key = r.identity_key AND c.deleted_at IS NULL
            )
            WHERE NOT EXISTS (SELECT 1 FROM inserted i WHERE i.identity_key = r.identity_key)
            RETURNING r.contact_id
        )"""
    _COUNTS = """
        SELECT count(*), count(*) FILTER (WHERE marketing_consent = 'opted_in'), {found} FROM inserted
    """
    # A contact another transaction committed while ON CONFLICT waited for it is not in that snapshot.
    _FIND_EXISTING = """
        UPDATE import_rows r SET contact_id = (
            SELECT c.id FROM contacts c
            WHERE c.organization_id = :org AND c.identity_key = r.identity_key AND c.deleted_at IS NULL
        )
        WHERE r.existing AND r.contact_id IS NULL
    """
    _UPDATE = """
        UPDATE contacts c SET
            name = coalesce(r.name, c.name), email = coalesce(r.email, c.email),
            language = coalesce(r.language, c.language), lifecycle_stage = coalesce(r.lifecycle_stage, c.lifecycle_stage),
            custom_attributes = c.custom_attributes || coalesce(r.custom_attributes, '{}'), updated_at = now()
        FROM import_rows r
        WHERE c.id = r.contact_id AND r.existing AND (
            (r.name IS NOT NULL AND r.name IS DISTINCT FROM c.name)
            OR (r.email IS NOT NULL AND r.email IS DISTINCT FROM c.email)
            OR (r.language IS NOT NULL AND r.language IS DISTINCT FROM c.language)
            OR (r.lifecycle_stage IS NOT NULL AND r.lifecycle_stage <> c.lifecycle_stage)
            OR (r.custom_attributes IS NOT NULL AND NOT (c.custom_attributes @> r.custom_attributes))
        )
    """
    _OPT_IN_EXISTING = """
        WITH changed AS (
            UPDATE contacts c SET marketing_consent = 'opted_in'
            FROM import_rows r
            WHERE c.id = r.contact_id AND r.existing AND r.opt_in AND c.marketing_consent <> 'opted_in'
            RETURNING c.id
        )
        INSERT INTO consent_events (organization_id, contact_id, action, scope, source, actor, evidence)
        SELECT :org, id, 'opt_in', 'marketing', 'import', :actor, :evidence FROM changed
    """
    _TAGS = """
        INSERT INTO tags (organization_id, name)
        SELECT DISTINCT :org, tag FROM import_rows, unnest(string_to_array(tags, '|')) AS tag
        ON CONFLICT (organization_id, name) DO NOTHING
    """
    # Tags for the contacts that exist already (in both modes); they may have some of them.
    _TAG_CONTACTS = """
        INSERT INTO contact_tags (contact_id, tag_id)
        SELECT r.contact_id, t.id
        FROM import_rows r CROSS JOIN LATERAL unnest(string_to_array(r.tags, '|')) AS wanted(name)
        JOIN tags t ON t.organization_id = :org AND t.name = wanted.name
        WHERE r.existing AND r.contact_id IS NOT NULL
        ON CONFLICT DO NOTHING
    """

    def __init__(self, session: Session, org: Organization, mapping: Mapping, counts: Counts, import_id: uuid.UUID):
        self.session, self.org, self.counts = session, org, counts
        self.updating = mapping.mode == "update_existing"
        self.known_tags: set[str] = set()  # tag names this import has made sure exist
        self.consent = {"org": org.id, "actor": f"import {import_id}", "evidence": "consent column of the imported file"}
        usage = plans.resource_usage(session, org=org, resource="contacts")
        self.room = None if usage.limit is None else max(0, usage.limit - usage.used)
        session.execute(text(self._STAGE))

    def _sql(self, statement: str, **params) -> int:
        return self.session.execute(text(statement), {"org": self.org.id, **params}).rowcount

    def write(self, chunk: StagedChunk) -> None:
        self._copy(chunk)
        admitted = chunk.size - self._enforce_plan_limit()
        tagging, finding = bool(chunk.tag_names), self.updating or bool(chunk.tag_names)
        if tagging and not chunk.tag_names <= self.known_tags:  # a file repeats a few tags: the first chunks create them
            self._sql(self._TAGS)
            self.known_tags |= chunk.tag_names
        created, opted_in, found = self.session.execute(
            text(self._insert(tagging, finding)), {"org": self.org.id, **self.consent}
        ).one()
        existing = admitted - created
        self.counts.created += created
        self.counts.opted_in += opted_in
        if finding and found < existing:
            self._sql(self._FIND_EXISTING)
        if self.updating:
            self._update_existing(chunk, existing)
        else:
            self.counts.skipped_existing += existing
        if tagging and existing:
            self._sql(self._TAG_CONTACTS)
        if self.room is not None:
            self.room = max(0, self.room - created)

    @classmethod
    @functools.cache
    def _insert(cls, tagging: bool, finding: bool) -> str:
        """The chunk's one statement: new contacts, their consent events and tags; existing rows marked when needed."""
        return "WITH" + cls._INSERTED + (cls._NEW_TAGS if tagging else "") + (cls._EXISTING if finding else "") + \
            cls._COUNTS.format(found="(SELECT count(contact_id) FROM existing)" if finding else "0")

    def _update_existing(self, chunk: StagedChunk, existing: int) -> None:
        if not existing:
            return
        updated = self._sql(self._UPDATE)
        self.counts.updated += updated
        self.counts.unchanged += existing - updated
        if chunk.opting_in:
            self.counts.opted_in += self._sql(self._OPT_IN_EXISTING, **self.consent)

    def _copy(self, chunk: StagedChunk) -> None:
        cursor = driver_connection(self.session).cursor()
        cursor.execute("TRUNCATE import_rows")
        with cursor.copy(self._COPY) as copy:
            copy.write(chunk.data())

    def _enforce_plan_limit(self) -> int:
        """New contacts past the plan's limit are taken out of the chunk and reported, row by row; returns how many."""
        if self.room is None:
            return 0
        over = self.session.execute(
            text("SELECT row_number, phone_e164 FROM import_rows r WHERE NOT EXISTS ("
                 " SELECT 1 FROM contacts c WHERE c.organization_id = :org AND c.identity_key = r.identity_key"
                 " AND c.deleted_at IS NULL) ORDER BY row_number OFFSET :room"),
            {"org": self.org.id, "room": self.room},
        ).all()
        if not over:
            return 0
        self.session.execute(
            text("DELETE FROM import_rows WHERE row_number = ANY(:numbers)"), {"numbers": [n for n, _ in over]}
        )
        self.counts.over_plan_limit += len(over)
        self.counts.errors.extend(RowError(n, "", phone, "plan_limit_exceeded") for n, phone in over)
        return len(over)
