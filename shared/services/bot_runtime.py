"""Bots pipeline: a conversation's bot session advanced by its customer's messages, its question
timeouts and its outside calls (issue 11).

The inbound pipeline hands a conversation to its bot (`conversations_for_bots`: a live session that
is not waiting for an agent, or the number's active default chatbot with a live version) and
publishes one `bots.step` per conversation after commit. `step_conversation` then, in one transaction:
locks the conversation row (one step per conversation at a time, a session's start included), finds
the live session or starts one with `flows.start` on the chatbot's live version (a session keeps the
version it started on), feeds the interpreter the customer's newest inbound message after the last one
applied, performs the actions (shared/services/bot_actions.py), and saves the state with the message
applied.

Bursts: a step waits until the customer has been quiet for BOT_BURST_SECONDS (it publishes itself
again for the rest of that time), then the inbound messages after `last_message_sequence` are
coalesced into ONE step: over the newest of them, or for a new session over the newest one that names
a trigger (a keyword, an ad, a button payload) when the newest only matches an "any" trigger. The
earlier lines are marked applied with it. Idempotency: a redelivered task finds nothing after
`last_message_sequence` and changes nothing; bot replies carry an idempotency key per inbound message
(or wait) and action, so even a replayed step cannot queue a reply twice.

Waits: a session's `due_at` says when beat must act on it (`due_sessions`, `fire_due`): a question's
timeout (the interpreter's "timeout" event, once per wait: the wait id changes when it is followed),
an outside call that never came back (its failure branch), or a customer silent for
BOT_IDLE_EXPIRY_SECONDS on a question without a timeout (the session ends, "expired").

Outside calls: a step that ends waiting on an API or AI call saves the call (`pending_call`) and
publishes `bots.call` after commit; the call is made outside any transaction and its result applied by
`apply_call_result` under the conversation's lock, if the session still waits on that call.

An agent's reply or assignment stops the bot (the session ends, the conversation is the agent's);
closing the conversation ends its session too (shared/services/bot_sessions.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import structlog
from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, joinedload

from shared import flows
from shared.errors import DomainError
from shared.flows.triggers import find_start
from shared.models import (
    LIVE_BOT_SESSION_STATUSES,
    BotEndReason,
    BotSession,
    BotSessionStatus,
    Chatbot,
    ChatbotVersion,
    Contact,
    Conversation,
    ConversationOwner,
    Direction,
    Message,
    Organization,
    SenderType,
    WhatsAppNumber,
)
from shared.models.base import utcnow
from shared.queueing.names import BOT_CALL, BOT_STEP
from shared.queueing.publish import enqueue_on_commit
from shared.services import assignment, bot_actions
from shared.services.bot_sessions import STEPPING
from shared.settings import get_settings

log = structlog.get_logger(__name__)

# The interpreter's state status -> the session row's.
_STATUS = {"running": BotSessionStatus.active, "waiting": BotSessionStatus.waiting,
           "handoff": BotSessionStatus.handoff, "ended": BotSessionStatus.ended}
BURST_LOOKBACK = 20  # the newest unapplied messages a new session's trigger is looked for in


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
            and (live[c.id] in STEPPING if c.id in live else numbers[c.number_id].default_chatbot_id in ready)}


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


class _Turn:
    """What one step works with: the locked conversation, its contact, organization and number (`_lock_turn`)."""

    def __init__(self, session: Session, conversation: Conversation, contact: Contact, org: Organization,
                 number: WhatsAppNumber) -> None:
        self.session, self.conversation = session, conversation
        self.contact, self.org, self.number = contact, org, number

    def context(self) -> dict[str, Any]:
        contact = self.contact
        return {"now": utcnow(), "timezone": self.org.timezone, "number": f"+{self.number.display_phone_number}",
                "default_country": self.org.default_country,
                "contact": {"name": contact.name or contact.profile_name, "phone": contact.phone_e164,
                            "email": contact.email, "lead_score": contact.lead_score,
                            "lifecycle_stage": contact.lifecycle_stage, "tags": [tag.name for tag in contact.tags],
                            "attributes": dict(contact.custom_attributes or {})}}


def _lock_turn(session: Session, org_id: uuid.UUID | str, conversation_id: uuid.UUID | str) -> _Turn | None:
    """The conversation locked, with its contact, organization and number, in one round trip.

    Every step reads all four (a query each, the contact twice with its tags, was a fifth of the bots
    pool's time). Only the conversation is locked, as before. Outer joins: a soft-deleted contact,
    organization or number comes back None, as `session.get` answered. The contact's tags (the
    interpreter's context reads them) come in the same round trip, a row per tag.
    """
    row = session.execute(
        select(Conversation, Contact, Organization, WhatsAppNumber)
        .outerjoin(Contact, Contact.id == Conversation.contact_id)
        .outerjoin(Organization, Organization.id == Conversation.organization_id)
        .outerjoin(WhatsAppNumber, WhatsAppNumber.id == Conversation.number_id)
        .where(Conversation.organization_id == uuid.UUID(str(org_id)),
               Conversation.id == uuid.UUID(str(conversation_id)))
        .options(joinedload(Contact.tags))
        .with_for_update(of=Conversation)
    ).unique().one_or_none()
    return _Turn(session, *row) if row is not None else None


def _agent_reply(conversation: Conversation, since) -> Any:
    """An agent's message in the conversation at or after `since` (a time, or the session's column)."""
    return and_(Message.conversation_id == conversation.id, Message.direction == Direction.outbound,
                Message.sender_type == SenderType.agent, Message.created_at >= since)


def _live_session(session: Session, conversation: Conversation) -> tuple[BotSession | None, bool]:
    """The conversation's live session (locked), and whether an agent replied since it started: one round
    trip, and no reply check at all when there is no session."""
    row = session.execute(
        select(BotSession, exists().where(_agent_reply(conversation, BotSession.created_at))).where(BotSession.conversation_id == conversation.id,
                                                BotSession.status.in_(LIVE_BOT_SESSION_STATUSES))
        .with_for_update(of=BotSession)
    ).one_or_none()
    return (row[0], bool(row[1])) if row is not None else (None, False)


def _agent_reply_since(session: Session, conversation: Conversation, bot_session: BotSession) -> Message | None:
    return session.execute(
        select(Message).where(_agent_reply(conversation, bot_session.created_at)).order_by(Message.sequence).limit(1)
    ).scalar_one_or_none()


def _to_the_replier(session: Session, conversation: Conversation, reply: Message) -> None:
    """The person who answered over the bot takes the conversation; without one who can, the agents' queue."""
    if reply.sender_user_id is not None:
        try:
            assignment.assign(session, conversation=conversation, actor_id=reply.sender_user_id,
                              agent_id=reply.sender_user_id)
            return
        except DomainError:  # deactivated since, or a role that takes no conversations
            pass
    _to_agents(session, conversation, "agent_replied")


def _bot_out(turn: _Turn, bot_session: BotSession | None, agent_replied: bool) -> str | None:
    """Why the bot may not act on this conversation now (None: it may); an agent's reply ends its session."""
    session, conversation = turn.session, turn.conversation
    if conversation.assigned_agent_id is not None:
        return "agent_owned"
    if turn.contact.is_blocked:
        return "blocked"
    if bot_session is not None and bot_session.status not in STEPPING:
        return "handed_off"
    reply = _agent_reply_since(session, conversation, bot_session) if agent_replied else None
    if reply is not None:
        # A person answered while the bot waited: they have the conversation, the bot answers no more.
        _end(bot_session, BotEndReason.agent, conversation)
        session.flush()
        _to_the_replier(session, conversation, reply)
        session.flush()
        return "agent_replied"
    return None


def _end(bot_session: BotSession, reason: BotEndReason, conversation: Conversation) -> None:
    """The session ended; a conversation the bot held belongs to nobody (the next message starts again)."""
    bot_session.status, bot_session.ended_at = BotSessionStatus.ended, utcnow()
    bot_session.due_at, bot_session.pending_call = None, None
    bot_session.end_reason = bot_session.end_reason or reason.value
    if conversation.owner == ConversationOwner.bot:
        conversation.owner = ConversationOwner.none


def _applied_up_to(conversation_id) -> Any:
    """The sequence of the last inbound message a step applied in the conversation (an id or the column):
    every session of the conversation, ended ones too, marks what was applied, so a message is fed once."""
    return (select(func.coalesce(func.max(BotSession.last_message_sequence), 0))
            .where(BotSession.conversation_id == conversation_id).scalar_subquery())


def _unapplied(session: Session, conversation: Conversation) -> list[Message]:
    """The newest inbound messages no step applied yet, newest first."""
    return list(session.execute(
        select(Message).where(Message.conversation_id == conversation.id, Message.direction == Direction.inbound,
                              Message.sequence > _applied_up_to(conversation.id))
        .order_by(Message.sequence.desc()).limit(BURST_LOOKBACK)
    ).scalars())


def _still_typing(newest: Message) -> float:
    """Seconds of quiet still to wait before the burst ending in `newest` is answered (0: answer now)."""
    window = get_settings().bot_burst_seconds
    if window <= 0:
        return 0.0
    remaining = window - (utcnow() - newest.created_at).total_seconds()
    return remaining if remaining > 0.01 else 0.0


_VERSIONS: dict[tuple[uuid.UUID, int], dict[str, Any]] = {}  # published versions never change: kept per process
_VERSIONS_KEPT = 256


def _content(session: Session, chatbot_id: uuid.UUID, number: int) -> dict[str, Any]:
    key = (chatbot_id, number)
    content = _VERSIONS.get(key)
    if content is None:
        content = session.execute(select(ChatbotVersion.content).where(
            ChatbotVersion.chatbot_id == chatbot_id, ChatbotVersion.number == number)).scalar_one()
        if len(_VERSIONS) >= _VERSIONS_KEPT:
            _VERSIONS.clear()
        _VERSIONS[key] = content
    return content


def _starting_message(bot: dict[str, Any], burst: list[Message]) -> Message:
    """The burst's message a new session starts on: the newest naming a trigger of its own, else the newest."""
    for message in burst:
        found = find_start(bot, event_of(message))
        if found is not None and (found[1].get("data") or {}).get("trigger") != "any":
            return message
    return burst[0]


def step_conversation(session: Session, *, org_id: uuid.UUID | str, conversation_id: uuid.UUID | str) -> str:
    """Advance the conversation's bot by its newest unapplied inbound message; what happened, for the log."""
    turn = _lock_turn(session, org_id, conversation_id)
    if turn is None:
        return "no_conversation"
    conversation = turn.conversation
    bot_session, agent_replied = _live_session(session, conversation)
    why_not = _bot_out(turn, bot_session, agent_replied)
    if why_not:
        return why_not
    if bot_session is not None and (bot_session.state.get("wait") or {}).get("kind") in ("api", "ai"):
        return "waiting_on_call"  # the call's result steps it; messages meanwhile are taken after that
    burst = _unapplied(session, conversation)
    if not burst:
        return "nothing_new"  # a redelivered step, or one whose messages a previous step took
    wait = _still_typing(burst[0])
    if wait:
        enqueue_on_commit(session, BOT_STEP, countdown=wait, org_id=str(conversation.organization_id),
                          conversation_id=str(conversation.id))
        return "settling"
    if bot_session is None:
        chatbot = session.get(Chatbot, turn.number.default_chatbot_id) if turn.number.default_chatbot_id else None
        if chatbot is None or chatbot.deleted_at is not None or not chatbot.is_active or chatbot.live_version is None:
            return _to_agents(session, conversation, "no_bot")
        bot = _content(session, chatbot.id, chatbot.live_version)
        message = _starting_message(bot, burst)
        result = flows.start(bot, event=event_of(message), context=turn.context())
        if result["status"] == "not_started":
            return _to_agents(session, conversation, "no_trigger")
        bot_session = BotSession(organization_id=conversation.organization_id, conversation_id=conversation.id,
                                 chatbot_id=chatbot.id, version=chatbot.live_version, path=[])
        session.add(bot_session)
        outcome = "started"
    else:
        message = burst[0]
        bot = _content(session, bot_session.chatbot_id, bot_session.version)
        result = flows.step(bot, bot_session.state, event=event_of(message), context=turn.context())
        outcome = "stepped"
    newest = burst[0]
    bot_session.last_message_id, bot_session.last_message_sequence = newest.id, newest.sequence
    _apply(turn, bot_session, result, key=f"bot:{message.id}")
    log.info("bots.step", conversation_id=str(conversation.id), outcome=outcome, status=bot_session.status.value,
             message_id=str(message.id), burst=len(burst), actions=[a["type"] for a in result["actions"]],
             errors=result["errors"] or None)
    return outcome


def _due_at(state: dict[str, Any] | None, call: dict[str, Any] | None, now: dt.datetime) -> dt.datetime | None:
    settings = get_settings()
    wait = (state or {}).get("wait") if (state or {}).get("status") == "waiting" else None
    if wait is None:
        return None
    if call is not None:
        return now + dt.timedelta(seconds=float(call["timeout_seconds"]) + settings.bot_call_grace_seconds)
    if wait.get("deadline"):
        return dt.datetime.fromisoformat(wait["deadline"])
    return now + dt.timedelta(seconds=settings.bot_idle_expiry_seconds)


def _apply(turn: _Turn, bot_session: BotSession, result: dict[str, Any], *, key: str) -> None:
    """Save the interpreter's result on the session and perform its actions; publish its outside call."""
    session, conversation = turn.session, turn.conversation
    now = utcnow()
    call = next((a for a in result["actions"] if a["type"] in bot_actions.OUTSIDE_CALLS), None)
    bot_session.state = result["state"]
    bot_session.status = _STATUS.get(result["status"], BotSessionStatus.active)
    bot_session.pending_call = call
    bot_session.due_at = _due_at(result["state"], call, now)
    seen = set(bot_session.path or [])
    bot_session.path = [*(bot_session.path or []), *dict.fromkeys(
        f"{v['flow_id']}/{v['node_id']}" for v in result["visited"] if f"{v['flow_id']}/{v['node_id']}" not in seen)]
    if bot_session.status == BotSessionStatus.ended:
        _end(bot_session, BotEndReason.completed, conversation)
    elif bot_session.status == BotSessionStatus.handoff:
        bot_session.end_reason, bot_session.due_at = BotEndReason.handoff.value, None
    session.flush()
    bot_actions.perform(session, org=turn.org, conversation=conversation, contact=turn.contact,
                        actions=result["actions"], key=key)
    if call is not None:
        enqueue_on_commit(session, BOT_CALL, org_id=str(conversation.organization_id),
                          conversation_id=str(conversation.id), session_id=str(bot_session.id),
                          call_id=call["call_id"])
    session.flush()


def _to_agents(session: Session, conversation: Conversation, why: str) -> str:
    """No bot for this message after all: the agents' path, as inbound would have taken it."""
    conversation.owner = ConversationOwner.none
    assignment.auto_assign(session, conversation=conversation)
    return why


def _session_turn(session: Session, org_id: str, conversation_id: str, session_id: str
                  ) -> tuple[_Turn | None, BotSession | None, str | None]:
    """The locked conversation's turn and its live session `session_id`, or why there is nothing to do."""
    turn = _lock_turn(session, org_id, conversation_id)
    if turn is None:
        return None, None, "no_conversation"
    bot_session, agent_replied = _live_session(session, turn.conversation)
    if bot_session is None or str(bot_session.id) != str(session_id):
        return None, None, "session_over"
    why_not = _bot_out(turn, bot_session, agent_replied)
    if why_not:
        return None, None, why_not
    return turn, bot_session, None


def due_sessions(session: Session, *, limit: int = 500) -> list[dict[str, str]]:
    """The stepping sessions whose `due_at` has passed, oldest first: what `fire_due` is published for."""
    rows = session.execute(
        select(BotSession.organization_id, BotSession.conversation_id, BotSession.id).where(
            BotSession.status.in_(STEPPING), BotSession.due_at.is_not(None), BotSession.due_at <= utcnow())
        .order_by(BotSession.due_at).limit(limit)
    ).all()
    return [{"org_id": str(org), "conversation_id": str(conversation), "session_id": str(sid)}
            for org, conversation, sid in rows]


def fire_due(session: Session, *, org_id: str, conversation_id: str, session_id: str) -> str:
    """Act on a session whose `due_at` passed: its question's timeout, a lost outside call, an idle expiry."""
    turn, bot_session, why_not = _session_turn(session, org_id, conversation_id, session_id)
    if bot_session is None:
        return why_not or "session_over"
    if bot_session.due_at is None or bot_session.due_at > utcnow():
        return "not_due"  # a second publish for a wait already acted on
    wait = bot_session.state.get("wait") or {}
    bot = _content(session, bot_session.chatbot_id, bot_session.version)
    if wait.get("kind") in ("api", "ai"):  # the call's task was lost, or never answered: its failure branch
        event = {"type": f"{wait['kind']}_result", "call_id": wait.get("id"), "ok": False, "status": 0,
                 "json": None, "text": None, "error": "the call did not come back"}
        result = flows.step(bot, bot_session.state, event=event, context=turn.context())
        _apply(turn, bot_session, result, key=f"bot:{bot_session.id}:call{wait.get('id')}")
        return "call_lost"
    if wait.get("kind") == "answer" and wait.get("deadline"):
        result = flows.step(bot, bot_session.state, event={"type": "timeout", "wait_id": wait.get("id")},
                            context=turn.context())
        if result["state"] == bot_session.state:
            return "not_due"
        bot_session.timeouts += 1
        bot_session.timed_out_nodes = [*bot_session.timed_out_nodes,
                                       f"{bot_session.state['flow_id']}/{bot_session.state['node_id']}"]
        _apply(turn, bot_session, result, key=f"bot:{bot_session.id}:timeout{wait.get('id')}")
        return "timed_out"
    _end(bot_session, BotEndReason.expired, turn.conversation)  # silent past the idle limit, no timeout of its own
    session.flush()
    return "expired"


def pending_call(session: Session, *, session_id: str, call_id: int) -> tuple[uuid.UUID, dict[str, Any]] | None:
    """(organization id, the call) when session `session_id` still waits on call `call_id`; None otherwise."""
    bot_session = session.get(BotSession, uuid.UUID(str(session_id)))
    if bot_session is None or bot_session.status not in STEPPING or bot_session.pending_call is None:
        return None
    if (bot_session.state.get("wait") or {}).get("id") != call_id:
        return None
    return bot_session.organization_id, dict(bot_session.pending_call)


def apply_call_result(session: Session, *, org_id: str, conversation_id: str, session_id: str,
                      event: dict[str, Any]) -> str:
    """Step the session with an outside call's result if it still waits on that call (a stale one changes nothing)."""
    turn, bot_session, why_not = _session_turn(session, org_id, conversation_id, session_id)
    if bot_session is None:
        return why_not or "session_over"
    wait = bot_session.state.get("wait") or {}
    if wait.get("id") != event.get("call_id") or wait.get("kind") not in ("api", "ai"):
        return "stale"
    bot = _content(session, bot_session.chatbot_id, bot_session.version)
    result = flows.step(bot, bot_session.state, event=event, context=turn.context())
    _apply(turn, bot_session, result, key=f"bot:{bot_session.id}:call{event.get('call_id')}")
    if _unapplied(session, turn.conversation):
        # the customer wrote while the call was out: those messages are stepped now (a new start if it ended)
        enqueue_on_commit(session, BOT_STEP, org_id=str(turn.conversation.organization_id),
                          conversation_id=str(turn.conversation.id))
    return "applied"


def lost_steps(session: Session, *, older_than: dt.datetime, limit: int = 500) -> list[dict[str, str]]:
    """Conversations the bot has with an inbound message no step applied since before `older_than`: a
    `bots.step` publish was lost (broker down, a worker killed before its delayed step ran)."""
    rows = session.execute(
        select(Conversation.organization_id, Conversation.id).where(
            Conversation.owner == ConversationOwner.bot, Conversation.assigned_agent_id.is_(None),
            Conversation.last_message_at < older_than,
            Conversation.last_message_at > older_than - dt.timedelta(days=1),
            exists().where(and_(Message.conversation_id == Conversation.id, Message.direction == Direction.inbound,
                                Message.sequence > _applied_up_to(Conversation.id))))
        .limit(limit)
    ).all()
    return [{"org_id": str(org), "conversation_id": str(cid)} for org, cid in rows]
