"""Chatbots: CRUD, on and off, publishing versions, rolling back, and simulating without WhatsApp."""

from flask.views import MethodView

from shared.permissions import Permission
from shared.services import chatbot_stats, chatbot_versions, chatbots
from web.auth import current_org, current_principal, require_org_id, requires
from web.blueprint import Blueprint
from web.db import get_session
from web.schemas.chatbots import (
    ChatbotCreateSchema,
    ChatbotSchema,
    ChatbotStatsSchema,
    ChatbotUpdateSchema,
    RollbackSchema,
    SimulateSchema,
    SimulationSchema,
    StatsQueryArgsSchema,
    VersionDetailSchema,
    VersionSchema,
)

blp = Blueprint("chatbots", __name__, description="Chatbots, their published versions and simulation")

NAME_TAKEN = "`chatbot_name_taken`: the organization has a chatbot of that name"
INVALID = "`chatbot_invalid`: details.problems lists every problem of the draft (flow_id, node_id, field, message)"


def _chatbot(chatbot_id):
    return chatbots.get_chatbot(get_session(), org_id=require_org_id(), chatbot_id=chatbot_id)


@blp.route("/", strict_slashes=False)
class ChatbotList(MethodView):
    @requires(Permission.chatbots_read)
    @blp.response(200, ChatbotSchema(many=True))
    def get(self):
        """Every chatbot of the organization, by name."""
        return chatbots.list_chatbots(get_session(), org_id=require_org_id())

    @requires(Permission.chatbots_manage)
    @blp.arguments(ChatbotCreateSchema)
    @blp.response(201, ChatbotSchema)
    @blp.alt_response(409, description=NAME_TAKEN)
    def post(self, body):
        """Create a chatbot (inactive, with an empty draft)."""
        return chatbots.create_chatbot(get_session(), org_id=require_org_id(), **body)


@blp.route("/<chatbot_id>")
class ChatbotItem(MethodView):
    @requires(Permission.chatbots_read)
    @blp.response(200, ChatbotSchema)
    def get(self, chatbot_id):
        """One chatbot."""
        return _chatbot(chatbot_id)

    @requires(Permission.chatbots_manage)
    @blp.arguments(ChatbotUpdateSchema)
    @blp.response(200, ChatbotSchema)
    @blp.alt_response(409, description=NAME_TAKEN)
    def patch(self, body, chatbot_id):
        """Rename, describe, or change the chatbot-wide variables (of the draft: publish to use them)."""
        return chatbots.update_chatbot(get_session(), chatbot=_chatbot(chatbot_id), changes=body)

    @requires(Permission.chatbots_manage)
    @blp.response(204)
    def delete(self, chatbot_id):
        """Delete a chatbot; numbers that used it by default are left with none."""
        chatbots.delete_chatbot(get_session(), chatbot=_chatbot(chatbot_id))


@blp.route("/<chatbot_id>/activate")
class ChatbotActivate(MethodView):
    @requires(Permission.chatbots_manage)
    @blp.response(200, ChatbotSchema)
    @blp.alt_response(409, description="`chatbot_not_published`: publish a version first")
    def post(self, chatbot_id):
        """Let the chatbot answer customers, on its version in use."""
        return chatbots.activate_chatbot(get_session(), chatbot=_chatbot(chatbot_id))


@blp.route("/<chatbot_id>/deactivate")
class ChatbotDeactivate(MethodView):
    @requires(Permission.chatbots_manage)
    @blp.response(200, ChatbotSchema)
    def post(self, chatbot_id):
        """Stop the chatbot answering customers."""
        return chatbots.deactivate_chatbot(get_session(), chatbot=_chatbot(chatbot_id))


@blp.route("/<chatbot_id>/publish")
class ChatbotPublish(MethodView):
    @requires(Permission.chatbots_manage)
    @blp.response(201, VersionDetailSchema)
    @blp.alt_response(422, description=INVALID)
    def post(self, chatbot_id):
        """Validate the whole draft and freeze it as the next version, which new sessions then start on."""
        return chatbot_versions.publish_chatbot(get_session(), chatbot=_chatbot(chatbot_id),
                                                published_by_id=current_principal().user.id)


@blp.route("/<chatbot_id>/versions")
class ChatbotVersionList(MethodView):
    @requires(Permission.chatbots_read)
    @blp.response(200, VersionSchema(many=True))
    def get(self, chatbot_id):
        """The published versions, newest first (the chatbot's live_version is the one in use)."""
        return chatbot_versions.list_versions(get_session(), chatbot=_chatbot(chatbot_id))


@blp.route("/<chatbot_id>/versions/<int:version>")
class ChatbotVersionItem(MethodView):
    @requires(Permission.chatbots_read)
    @blp.response(200, VersionDetailSchema)
    def get(self, chatbot_id, version):
        """One published version with its frozen content."""
        return chatbot_versions.get_version(get_session(), chatbot=_chatbot(chatbot_id), number=version)


@blp.route("/<chatbot_id>/rollback")
class ChatbotRollback(MethodView):
    @requires(Permission.chatbots_manage)
    @blp.arguments(RollbackSchema)
    @blp.response(200, ChatbotSchema)
    def post(self, body, chatbot_id):
        """Make an earlier version the one new sessions start on (no new version is written)."""
        return chatbot_versions.rollback_chatbot(get_session(), chatbot=_chatbot(chatbot_id), number=body["version"])


@blp.route("/<chatbot_id>/simulate")
class ChatbotSimulate(MethodView):
    # manage, not read: simulating is part of building a chatbot
    @requires(Permission.chatbots_manage)
    @blp.arguments(SimulateSchema)
    @blp.response(200, SimulationSchema)
    def post(self, body, chatbot_id):
        """Run the draft (validated as publish would) or a version against scripted customer messages: the
        transcript, the variables and where the session stands. Nothing is sent and no contact changes."""
        return chatbot_versions.simulate_chatbot(get_session(), chatbot=_chatbot(chatbot_id),
                                                 timezone=current_org().timezone, **body)


@blp.route("/<chatbot_id>/stats")
class ChatbotStats(MethodView):
    @requires(Permission.chatbots_read)
    @blp.arguments(StatsQueryArgsSchema, location="query")
    @blp.response(200, ChatbotStatsSchema)
    @blp.alt_response(422, description="`invalid_period`: `from` must be before `to`, at most 366 days apart")
    def get(self, args, chatbot_id):
        """The sessions the chatbot started in the period (default: the last 7 days), and per node: reached,
        timed out, and the sessions that completed, were handed off, dropped or are still active there."""
        return chatbot_stats.chatbot_stats(get_session(), chatbot=_chatbot(chatbot_id), start=args.get("from_"),
                                           end=args.get("to"))
