"""The inbox: conversations, their messages, assignment, and replies (sent by the sends pool)."""

from flask import request
from flask.views import MethodView

from shared.audit import audit_trail
from shared.models import ConversationStatus
from shared.permissions import Permission
from shared.queueing.names import ASSIGN_WAITING, MARK_READ
from shared.queueing.publish import enqueue_on_commit
from shared.services import assignment, conversations, messages
from web.auth import current_principal, require_org_id, requires
from web.blueprint import Blueprint
from web.db import get_session, writes_once
from web.schemas.conversations import (
    AssignSchema,
    ConversationPageSchema,
    ConversationQueryArgsSchema,
    ConversationSchema,
    ConversationUpdateSchema,
    MessageCreateSchema,
    MessagePageSchema,
    MessageSchema,
    TimelineEventSchema,
)
from web.schemas.common import PageQueryArgsSchema

blp = Blueprint("conversations", __name__, description="The shared inbox: conversations, messages, assignment")


def _conversation(conversation_id, *, for_update: bool = False):
    conversation = conversations.get_conversation(get_session(), org_id=require_org_id(),
                                                  conversation_id=conversation_id, for_update=for_update)
    conversations.check_visible(conversation, current_principal().user)
    return conversation


def _free_capacity_later(conversation) -> None:
    """Capacity freed or a conversation queued: let the assignment task hand out what waits."""
    enqueue_on_commit(get_session(), ASSIGN_WAITING, org_id=str(conversation.organization_id))


@blp.route("/", strict_slashes=False)
class ConversationList(MethodView):
    @requires(Permission.conversations_read)
    @blp.arguments(ConversationQueryArgsSchema, location="query")
    @blp.response(200, ConversationPageSchema)
    def get(self, args):
        """Latest activity first; agents see theirs, their departments' and the unclaimed ones."""
        limit, cursor = args.pop("limit"), args.pop("cursor")
        page = conversations.list_conversations(get_session(), org_id=require_org_id(), viewer=current_principal().user,
                                                spec=args, cursor=cursor, limit=limit)
        return {"items": page.items, "next_cursor": page.next_cursor}


@blp.route("/<conversation_id>")
class ConversationItem(MethodView):
    @requires(Permission.conversations_read)
    @blp.response(200, ConversationSchema)
    def get(self, conversation_id):
        """One conversation."""
        return _conversation(conversation_id)

    @requires(Permission.conversations_manage)
    @blp.arguments(ConversationUpdateSchema)
    @blp.response(200, ConversationSchema)
    def patch(self, body, conversation_id):
        """Change status or priority."""
        conversation = conversations.update_conversation(
            get_session(), conversation=_conversation(conversation_id, for_update=True), changes=body)
        _free_capacity_later(conversation)
        return conversation


@blp.route("/<conversation_id>/messages")
class ConversationMessages(MethodView):
    @requires(Permission.conversations_read)
    @blp.arguments(PageQueryArgsSchema, location="query")
    @blp.response(200, MessagePageSchema)
    def get(self, args, conversation_id):
        """Messages, newest first."""
        items, next_cursor = conversations.messages_page(
            get_session(), conversation=_conversation(conversation_id), cursor=args["cursor"], limit=args["limit"])
        return {"items": items, "next_cursor": next_cursor}

    @requires(Permission.conversations_reply)
    @writes_once  # the message's one INSERT (shared.services.send_context)
    @blp.arguments(MessageCreateSchema)
    @blp.response(202, MessageSchema)
    @blp.alt_response(409, description="`window_closed` (details name the approved templates) or "
                                       "`contact_ineligible`")
    def post(self, body, conversation_id):
        """Reply: answers 202 with the message `queued`; the sends pool sends it. `Idempotency-Key` makes a
        retried request return the same message. Free-form outside the 24-hour window is refused with
        `window_closed`, naming the approved templates that can be sent instead."""
        principal = current_principal()
        message, _ = messages.queue_reply(
            get_session(), org_id=require_org_id(), conversation_id=conversation_id, viewer_id=principal.user_id,
            viewer_role=principal.role, spec=body, idempotency_key=request.headers.get("Idempotency-Key"),
        )
        return message


@blp.route("/<conversation_id>/assign")
class ConversationAssign(MethodView):
    @requires(Permission.conversations_manage)
    @blp.arguments(AssignSchema)
    @blp.response(200, ConversationSchema)
    def post(self, body, conversation_id):
        """Assign or transfer to an agent and/or a department (a department alone auto-assigns within it)."""
        conversation = assignment.assign(get_session(), conversation=_conversation(conversation_id),
                                         actor_id=current_principal().user.id, **body)
        _free_capacity_later(conversation)
        return conversation


@blp.route("/<conversation_id>/self-assign")
class ConversationSelfAssign(MethodView):
    @requires(Permission.conversations_reply)
    @blp.response(200, ConversationSchema)
    def post(self, conversation_id):
        """Take the conversation yourself."""
        me = current_principal().user
        conversation = assignment.assign(get_session(), conversation=_conversation(conversation_id),
                                         actor_id=me.id, agent_id=me.id)
        _free_capacity_later(conversation)
        return conversation


@blp.route("/<conversation_id>/unassign")
class ConversationUnassign(MethodView):
    @requires(Permission.conversations_manage)
    @blp.response(200, ConversationSchema)
    def post(self, conversation_id):
        """Back to the queue: the next online agent with room takes it."""
        conversation = assignment.unassign(get_session(), conversation=_conversation(conversation_id),
                                           actor_id=current_principal().user.id)
        _free_capacity_later(conversation)
        return conversation


def _status_change(status: ConversationStatus, doc: str):
    @requires(Permission.conversations_manage)
    @blp.response(200, ConversationSchema)
    def post(self, conversation_id):
        conversation = conversations.set_status(get_session(), conversation=_conversation(conversation_id, for_update=True),
                                                status=status)
        _free_capacity_later(conversation)
        return conversation
    post.__doc__ = doc
    return post


@blp.route("/<conversation_id>/close")
class ConversationClose(MethodView):
    post = _status_change(ConversationStatus.closed, "Close (resolve); a new customer message reopens it.")


@blp.route("/<conversation_id>/reopen")
class ConversationReopen(MethodView):
    post = _status_change(ConversationStatus.open, "Reopen; unassigned, it waits for the next agent with room.")


@blp.route("/<conversation_id>/read")
class ConversationRead(MethodView):
    @requires(Permission.conversations_reply)
    @blp.response(202, ConversationSchema)
    def post(self, conversation_id):
        """Mark read: unread goes to zero and Meta gets the read receipt for the last inbound message."""
        conversation = _conversation(conversation_id, for_update=True)
        last = conversations.mark_read(get_session(), conversation=conversation)
        if last is not None:
            enqueue_on_commit(get_session(), MARK_READ, conversation_id=str(conversation.id),
                              message_id=str(last.id), org_id=str(conversation.organization_id))
        return conversation


@blp.route("/<conversation_id>/timeline")
class ConversationTimeline(MethodView):
    @requires(Permission.conversations_read)
    @blp.response(200, TimelineEventSchema(many=True))
    def get(self, conversation_id):
        """What happened, oldest first: assignments, status changes, deliveries and reads."""
        conversation = _conversation(conversation_id)
        return audit_trail(org_id=conversation.organization_id, subject_type="conversation", subject_id=conversation.id)
