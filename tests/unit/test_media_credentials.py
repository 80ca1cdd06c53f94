"""Inbound media refused for an expired token (190) waits for new credentials and is fetched then, not dropped."""

from __future__ import annotations

from sqlalchemy import select

from shared.models import Direction, Message
from shared.queueing.names import FETCH_MEDIA
from shared.services import numbers
from shared.whatsapp.errors import GraphAPIError
from tests.unit.test_conversations import deliver, inbound, number  # noqa: F401


class RefusedToken:
    def get_media_url(self, media_id):
        raise GraphAPIError(http_status=401, code=190, message="Error validating access token: Session has expired")


def test_media_refused_for_the_token_is_fetched_once_the_number_has_a_new_one(deliver, db_session, client,
                                                                              admin_headers, number, published,
                                                                              monkeypatch):
    from workers.tasks.webhooks import fetch_media

    deliver(inbound({"type": "image", "image": {"id": "media-190", "mime_type": "image/jpeg"}}))
    image = db_session.execute(select(Message).where(Message.direction == Direction.inbound)).scalar_one()
    monkeypatch.setattr(numbers, "graph_client", lambda number: RefusedToken())
    fetch_media.run(message_id=str(image.id), org_id=str(image.organization_id))
    db_session.refresh(image)
    assert image.media_key is None and image.media_error.startswith("awaiting new credentials")

    published.clear()
    renewed = client.patch(f"/api/v1/numbers/{number['id']}", json={"access_token": "EAAG-a-fresh-token-456"},
                           headers=admin_headers)
    assert renewed.status_code == 200, renewed.get_json()
    assert (FETCH_MEDIA, {"message_id": str(image.id), "org_id": str(image.organization_id)}) in published
    published.clear()
    renamed = client.patch(f"/api/v1/numbers/{number['id']}", json={"verified_name": "Acme"}, headers=admin_headers)
    assert renamed.status_code == 200
    assert not [name for name, _ in published if name == FETCH_MEDIA]  # only new credentials fetch it again
