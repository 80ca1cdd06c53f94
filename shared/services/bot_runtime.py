"""Bots pipeline: a conversation's bot session advanced by its customer's messages (issue 11).

The inbound pipeline hands a conversation to its bot (`conversations_for_bots`: a live session that
is not waiting for an agent, or the number's active default chatbot with a live version) and
publishes one `bots.step` per conversation after commit. `step_conversation` then, in one transaction:
locks the conversation row (one step per conversation at a time, a session's start included), finds
the live session or starts one with `flows.start` on the chatbot's live version (a session keeps the
version it started on), feeds the interpreter the customer's newest inbound message after the last one
applied, performs the actions that need no outside call, and saves the state with the message applied.

Bursts: the inbound messages after `last_message_sequence` are coalesced into ONE step over the
newest of them (a customer who types three lines before the bot answers gets one answer, to the last
line); the earlier lines are marked applied with it. Idempotency: a redelivered task finds nothing
after `last_message_sequence` and changes nothing; bot replies also carry an idempotency key per
inbound message and action, so even a replayed step cannot queue a reply twice.

An agent's reply stops the bot: the next step ends the session and gives the conversation to the agent
(closing the conversation, shared/services/conversations.set_status, ends a live session too).

Not performed yet (logged): call_api / call_ai (their sessions stay waiting on the outside call),
opt_in / opt_out, set_attribute. Question timeouts (beat) are not wired yet either.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared import flows
from shared.errors import DomainError
from shared.models import (
    LIVE_BOT_SESSION_STATUSES,
    BotSession,
    BotSessionStatus,
    Chatbot,
    ChatbotVersion,
    Contact,
    Conversation,
    ConversationOwner,
    ConversationStatus,
    Direction,
    Message,
    Organization,
    SenderType,
    WhatsAppNumber,
)
from shared.models.base import utcnow
from shared.services import assignment, contacts, conversations, messages, tags

log = structlog.get_logger(__name__)

# The interpreter's state status -> the session row's.
_STATUS = {"running": BotSessionStatus.active, "waiting": BotSessionStatus.waiting,
           "handoff": BotSessionStatus.handoff, "ended": BotSessionStatus.ended}
_STEPPING = (BotSessionStatus.active, BotSessionStatus.waiting)


def conversations_for_bots(session: Session, *, org_id: uuid.UUID, conversations: list[Conversation],
                           numbers: dict[uuid.UUID, WhatsAppNumber]) -> set[uuid.UUID]:
    """The ids of `conversations` (unassigned, not blocked) their bot answers: two queries for a whole batch.

    A live session decides (active or waiting: the bot; handed off: the agents); without one, the
    number's default chatbot when it is active and has a live version.
    """
    if not conversations:
        return set()
    live = dict(session.execute(
        select(BotSession.conversation_id, BotSession.status).where(
            BotSession.organization_id == org_id, BotSession.status.in_(LIVE_BOT_SESSION_STATUSES),
            BotSession.conversation_id.in_([conversation.id for conversation in conversations]))
    ).all())
    default_ids = {numbers[c.number_id].default_chatbot_id for c in conversations
                   if c.id not in live and numbers[c.number_id].default_chatbot_id is not None}
    ready = set(session.execute(
        select(Chatbot.id).where(Chatbot.id.in_(default_ids), Chatbot.is_active, Chatbot.live_version.is_not(None))
    ).scalars()) if default_ids else set()
    return {c.id for c in conversations if c.owner != ConversationOwner.agent  # an agent took it over
            and (live[c.id] in _STEPPING if c.id in live else numbers[c.number_id].default_chatbot_id in ready)}


def event_of(message: Message) -> dict[str, Any]:
    """The interpreter's event for an inbound message; interactive answers by their id, never by title."""
    content = message.content or {}
    if message.type == "text":
        event: dict[str, Any] = {"type": "text", "text": content.get("body") or ""}
    elif message.type == "interactive":
        kind = content.get("type")
        reply = content.get(kind) if kind in ("button_reply", "list_reply") else None
        event = ({"type": "button" if kind == "button_reply" else "list", "id": reply.get("id"),
                  "title": reply.get("title")} if isinstance(reply, dict) else {"type": "media"})
    elif message.type == "button":  # a template's quick-reply button
        event = {"type": "template_button", "payload": content.get("payload") or content.get("text")}
    else:
        event = {"type": "media", "media_type": message.type}
    if message.referral:
        event["referral"] = message.referral
    return event


def _context(org: Organization, number: WhatsAppNumber, contact: Contact) -> dict[str, Any]:
    return {"now": utcnow(), "timezone": org.timezone, "number": f"+{number.display_phone_number}",
            "contact": {"name": contact.name or contact.profile_name, "phone": contact.phone_e164,
                        "email": contact.email, "lead_score": contact.lead_score,
                        "lifecycle_stage": contact.lifecycle_stage, "tags": [tag.name for tag in contact.tags],
                        "attributes": dict(contact.custom_attributes or {})}}


def _newest_unapplied(session: Session, conversation: Conversation, after: int) -> Message | None:
    return session.execute(
        select(Message).where(Message.conversation_id == conversation.id, Message.direction == Direction.inbound,
                              Message.sequence > after)
        .order_by(Message.sequence.desc()).limit(1)
    ).scalar_one_or_none()


def _agent_replied_since(session: Session, conversation: Conversation, bot_session: BotSession) -> bool:
    return session.execute(
        select(Message.id).where(Message.conversation_id == conversation.id, Message.direction == Direction.outbound,
                                 Message.sender_type == SenderType.agent,
                                 Message.created_at >= bot_session.created_at).limit(1)
    ).first() is not None


def step_conversation(session: Session, *, org_id: uuid.UUID | str, conversation_id: uuid.UUID | str) -> str:
    """Advance the conversation's bot by its newest unapplied inbound message; what happened, for the log."""
    conversation = session.execute(
        select(Conversation).where(Conversation.organization_id == uuid.UUID(str(org_id)),
                                   Conversation.id == uuid.UUID(str(conversation_id))).with_for_update()
    ).scalar_one_or_none()
    if conversation is None:
        return "no_conversation"
    if conversation.assigned_agent_id is not None:
        return "agent_owned"  # an agent has it: the bot stays out
    contact = session.get(Contact, conversation.contact_id)
    if contact.is_blocked:
        return "blocked"
    bot_session = session.execute(
        select(BotSession).where(BotSession.conversation_id == conversation.id,
                                 BotSession.status.in_(LIVE_BOT_SESSION_STATUSES)).with_for_update()
    ).scalar_one_or_none()
    if bot_session is not None and bot_session.status not in _STEPPING:
        return "handed_off"
    if bot_session is not None and _agent_replied_since(session, conversation, bot_session):
        # An agent answered while the bot waited: the agent has the conversation, the bot answers no more.
        bot_session.status, bot_session.ended_at = BotSessionStatus.ended, utcnow()
        conversation.owner = ConversationOwner.agent
        session.flush()
        return "agent_replied"
    # Every session of the conversation, ended ones too, marks what was applied: a message is fed once.
    after = session.execute(select(func.coalesce(func.max(BotSession.last_message_sequence), 0))
                            .where(BotSession.conversation_id == conversation.id)).scalar_one()
    message = _newest_unapplied(session, conversation, after)
    if message is None:
        return "nothing_new"  # a redelivered step, or one whose messages a previous step took
    org = session.get(Organization, conversation.organization_id)
    number = session.get(WhatsAppNumber, conversation.number_id)
    context = _context(org, number, contact)
    event = event_of(message)
    if bot_session is None:
        chatbot = session.get(Chatbot, number.default_chatbot_id) if number.default_chatbot_id else None
        if chatbot is None or chatbot.deleted_at is not None or not chatbot.is_active or chatbot.live_version is None:
            return _to_agents(session, conversation, "no_bot")
        bot = _content(session, chatbot.id, chatbot.live_version)
        result = flows.start(bot, event=event, context=context)
        if result["status"] == "not_started":
            return _to_agents(session, conversation, "no_trigger")
        bot_session = BotSession(organization_id=conversation.organization_id, conversation_id=conversation.id,
                                 chatbot_id=chatbot.id, version=chatbot.live_version)
        session.add(bot_session)
        outcome = "started"
    else:
        bot = _content(session, bot_session.chatbot_id, bot_session.version)
        result = flows.step(bot, bot_session.state, event=event, context=context)
        outcome = "stepped"
    bot_session.state = result["state"]
    bot_session.status = _STATUS.get(result["status"], BotSessionStatus.active)
    bot_session.last_message_id, bot_session.last_message_sequence = message.id, message.sequence
    if bot_session.status == BotSessionStatus.ended:
        bot_session.ended_at = utcnow()
    session.flush()
    _perform(session, org=org, conversation=conversation, contact=contact, message=message,
             actions=result["actions"])
    if bot_session.status == BotSessionStatus.ended and conversation.owner == ConversationOwner.bot:
        conversation.owner = ConversationOwner.none
    session.flush()
    log.info("bots.step", conversation_id=str(conversation.id), outcome=outcome, status=bot_session.status.value,
             message_id=str(message.id), actions=[action["type"] for action in result["actions"]],
             errors=result["errors"] or None)
    return outcome


def _content(session: Session, chatbot_id: uuid.UUID, number: int) -> dict[str, Any]:
    return session.execute(select(ChatbotVersion.content).where(
        ChatbotVersion.chatbot_id == chatbot_id, ChatbotVersion.number == number)).scalar_one()


def _to_agents(session: Session, conversation: Conversation, why: str) -> str:
    """No bot for this message after all: the agents' path, as inbound would have taken it."""
    conversation.owner = ConversationOwner.none
    assignment.auto_assign(session, conversation=conversation)
    return why


def _department(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _perform(session: Session, *, org: Organization, conversation: Conversation, contact: Contact, message: Message,
             actions: list[dict[str, Any]]) -> None:
    """The step's actions, in order, that need no outside call."""
    for index, action in enumerate(actions):
        kind = action["type"]
        if kind == "send_message":
            try:
                messages.queue_message(session, org=org, conversation=conversation, spec=action["message"],
                                       sender_type=SenderType.bot, idempotency_key=f"bot:{message.id}:{index}")
            except DomainError as exc:  # window closed, plan limit, ...: the session goes on, the reply does not
                log.info("bots.send_refused", conversation_id=str(conversation.id), code=exc.code)
        elif kind in ("tag", "untag"):
            change = tags.tag_contacts if kind == "tag" else tags.untag_contacts
            session.flush()  # tagging expires the whole session: what this step changed must be written first
            change(session, org_id=org.id, contact_ids=[contact.id], names=[action["tag"]])
            session.expire(contact, ["tags"])
        elif kind == "set_lifecycle_stage":
            contact.lifecycle_stage = action["stage"]
        elif kind == "change_lead_score":
            contacts.adjust_lead_score(session, contact=contact, delta=int(action["delta"]))
        elif kind == "assign_department":
            conversation.department_id = _department(action.get("department_id")) or conversation.department_id
        elif kind == "close_conversation":
            conversations.set_status(session, conversation=conversation, status=ConversationStatus.closed)
        elif kind == "handoff":
            conversation.department_id = _department(action.get("department_id")) or conversation.department_id
            conversation.owner = ConversationOwner.agent
            assignment.auto_assign(session, conversation=conversation)
        else:
            log.info("bots.action_not_performed", conversation_id=str(conversation.id), action=kind)
    session.flush()
