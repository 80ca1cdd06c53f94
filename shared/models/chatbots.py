"""Chatbots: the editable draft (flows, their nodes and edges) and the immutable versions published from it.

The draft is rows a builder edits one piece at a time; a version is the whole chatbot frozen as the JSON
the interpreter (shared.flows) reads, so a session keeps running on the version it started on whatever
the draft becomes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.models.base import Base, SoftDeleteMixin, TenantMixin


class Chatbot(TenantMixin, SoftDeleteMixin, Base):
    __tablename__ = "chatbots"
    __table_args__ = (
        Index("uq_chatbots_organization_id_name_live", "organization_id", "name", unique=True,
              postgresql_where=text("deleted_at IS NULL")),
    )

    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(500))
    is_active: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Chatbot-wide variables and their defaults: {name: default}.
    variables: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    # The number of the version new sessions run on (publish sets it, rollback moves it back); None: never published.
    live_version: Mapped[int | None] = mapped_column(Integer)


class ChatbotFlow(TenantMixin, Base):
    __tablename__ = "chatbot_flows"
    __table_args__ = (
        # Exactly one main flow per chatbot: the service moves it, this index makes two impossible.
        Index("uq_chatbot_flows_chatbot_id_main", "chatbot_id", unique=True, postgresql_where=text("is_main")),
    )

    chatbot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("chatbots.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    is_main: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    variables: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))


class FlowNode(TenantMixin, Base):
    """One node of a flow, keyed by the builder's own string id within the flow."""

    __tablename__ = "flow_nodes"
    __table_args__ = (UniqueConstraint("flow_id", "node_id"),)

    flow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("chatbot_flows.id", ondelete="CASCADE"))
    node_id: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(30))
    position_x: Mapped[float] = mapped_column(Float)
    position_y: Mapped[float] = mapped_column(Float)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))


class FlowEdge(TenantMixin, Base):
    """A link between two nodes of the same flow; the composite keys make a dangling edge impossible."""

    __tablename__ = "flow_edges"
    __table_args__ = (
        UniqueConstraint("flow_id", "edge_id"),
        ForeignKeyConstraint(["flow_id", "source"], ["flow_nodes.flow_id", "flow_nodes.node_id"],
                             name="fk_flow_edges_source_flow_nodes", ondelete="CASCADE"),
        ForeignKeyConstraint(["flow_id", "target"], ["flow_nodes.flow_id", "flow_nodes.node_id"],
                             name="fk_flow_edges_target_flow_nodes", ondelete="CASCADE"),
    )

    flow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("chatbot_flows.id", ondelete="CASCADE"))
    edge_id: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(100))
    source_handle: Mapped[str | None] = mapped_column(String(100))


class ChatbotVersion(TenantMixin, Base):
    """A published chatbot, frozen: never updated once written."""

    __tablename__ = "chatbot_versions"
    __table_args__ = (UniqueConstraint("chatbot_id", "number"),)

    chatbot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("chatbots.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    # The chatbot as shared.flows reads it: {chatbot_id, main_flow_id, flows, variables}.
    content: Mapped[dict[str, Any]] = mapped_column(JSONB)
    published_at: Mapped[dt.datetime]
    published_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
