"""The organization's AI endpoint, which its chatbots' `ai_prompt` nodes call (the key is write-only)."""

from flask.views import MethodView

from shared.permissions import Permission
from shared.services import ai_settings
from web.auth import current_principal, require_org_id, requires
from web.blueprint import Blueprint
from web.db import get_session
from web.schemas.ai_settings import AiSettingsSchema, AiSettingsUpdateSchema

blp = Blueprint("ai_settings", __name__, description="The organization's OpenAI-compatible AI endpoint for chatbots")


# org:manage for reading too: the endpoint and the key's hint are an administrator's business, not a builder's.
@blp.route("/", strict_slashes=False)
class AiSettingsItem(MethodView):
    @requires(Permission.org_manage)
    @blp.response(200, AiSettingsSchema)
    def get(self):
        """The AI endpoint (`configured` false when none is saved); the key shows only as a hint."""
        return ai_settings.get_ai_settings(get_session(), org_id=require_org_id())

    @requires(Permission.org_manage)
    @blp.arguments(AiSettingsUpdateSchema)
    @blp.response(200, AiSettingsSchema)
    @blp.alt_response(422, description="`url_not_allowed`: base_url is a private or internal address; "
                                       "`ai_api_key_required`: the first save needs api_key")
    def put(self, body):
        """Save the AI endpoint: its base URL (where /chat/completions is), model and API key (stored encrypted)."""
        return ai_settings.save_ai_settings(get_session(), org_id=require_org_id(),
                                            actor_id=current_principal().user.id, **body)

    @requires(Permission.org_manage)
    @blp.response(204)
    def delete(self):
        """Forget the AI endpoint and its key: `ai_prompt` nodes then take their fallback branch."""
        ai_settings.delete_ai_settings(get_session(), org_id=require_org_id(), actor_id=current_principal().user.id)
