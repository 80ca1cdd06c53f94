"""Messages sent outside an open inbox view: to a phone number or contact directly, and followed by id."""

from flask import request
from flask.views import MethodView

from shared.models import SenderType
from shared.permissions import Permission
from shared.errors import InvalidInputError
from shared.services import conversations, media, messages
from web.auth import current_org, current_principal, require_org_id, requires
from web.blueprint import Blueprint
from web.db import get_session
from web.schemas.conversations import DirectMessageCreateSchema, MediaUploadedSchema, MediaUploadSchema, MessageSchema
from web.views import accepts_upload

blp = Blueprint("messages", __name__, description="Send to a phone number or contact; follow a message's status")
media_blp = Blueprint("media", __name__, description="Files to send in media messages")


@blp.route("/", strict_slashes=False)
class MessageList(MethodView):
    @requires(Permission.conversations_reply)
    @blp.arguments(DirectMessageCreateSchema)
    @blp.response(202, MessageSchema)
    @blp.alt_response(409, description="`window_closed` (details name the approved templates) or "
                                       "`contact_ineligible`")
    def post(self, body):
        """Send from one of the organization's numbers to a phone (the contact is created if new) or a contact.
        Answers 202 with the message `queued`; `Idempotency-Key` makes a retry return the same message."""
        conversation = messages.conversation_for_recipient(
            get_session(), org=current_org(), number_id=body.pop("number_id"), to=body.pop("to", None),
            contact_id=body.pop("contact_id", None),
        )
        message, _ = messages.queue_message(
            get_session(), org=current_org(), conversation=conversation, spec=body, sender_type=SenderType.agent,
            sender_user_id=current_principal().user.id, idempotency_key=request.headers.get("Idempotency-Key"),
        )
        return message


@blp.route("/<message_id>")
class MessageItem(MethodView):
    @requires(Permission.conversations_read)
    @blp.response(200, MessageSchema)
    def get(self, message_id):
        """One message with its status steps and, when it failed, Meta's code and reason."""
        message = messages.get_message(get_session(), org_id=require_org_id(), message_id=message_id)
        conversation = conversations.get_conversation(get_session(), org_id=message.organization_id,
                                                      conversation_id=message.conversation_id)
        try:
            conversations.check_visible(conversation, current_principal().user)
        except conversations.ConversationNotFoundError as exc:  # an agent outside it sees no such message
            raise messages.MessageNotFoundError(f"message {message_id} not found") from exc
        return message


@media_blp.route("/", strict_slashes=False)
class MediaUpload(MethodView):
    @requires(Permission.conversations_reply)
    @accepts_upload()
    @media_blp.arguments(MediaUploadSchema, location="files")
    @media_blp.response(201, MediaUploadedSchema)
    def post(self, files):
        """Upload a file (multipart `file`); send it with `{"type": "image", "image": {"upload": "<upload>"}}`.
        Meta's types and sizes apply (image JPEG/PNG 5 MB, video/audio 16 MB, document 100 MB, sticker WebP)."""
        upload = files["file"]
        if not getattr(upload, "filename", None):
            raise InvalidInputError("Send the file as the multipart field `file`", details={"field": "file"})
        return media.save_upload(org_id=require_org_id(), mime_type=upload.mimetype, stream=upload.stream)
