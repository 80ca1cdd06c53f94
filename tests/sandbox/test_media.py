"""Media: multipart upload, GET /{media-id} -> url, download with the bearer token, expiry, delete."""

import hashlib
import io

import pytest

from tests.sandbox.helpers import AUTH, CUSTOMER, PHONE_NUMBER_ID, VERSION, customer_writes, error_of, send

UPLOAD_URL = f"/{VERSION}/{PHONE_NUMBER_ID}/media"
JPEG = b"\xff\xd8\xff\xe0sandbox-jpeg-bytes"


def upload(graph, data: bytes = JPEG, mime_type: str = "image/jpeg", **form):
    fields = {"messaging_product": "whatsapp", "type": mime_type, "file": (io.BytesIO(data), "photo.jpg", mime_type),
              **form}
    return graph.post(UPLOAD_URL, data=fields, headers=AUTH, content_type="multipart/form-data")


def test_upload_then_describe_then_download(graph):
    response = upload(graph)
    assert response.status_code == 200
    media_id = response.get_json()["id"]
    assert list(response.get_json()) == ["id"] and media_id.isdigit()

    described = graph.get(f"/{VERSION}/{media_id}", headers=AUTH).get_json()
    assert described == {
        "messaging_product": "whatsapp",
        "url": described["url"],
        "mime_type": "image/jpeg",
        "sha256": hashlib.sha256(JPEG).hexdigest(),
        "file_size": len(JPEG),
        "id": media_id,
    }
    downloaded = graph.get(described["url"], headers=AUTH)
    assert downloaded.status_code == 200 and downloaded.data == JPEG
    assert downloaded.mimetype == "image/jpeg"
    assert graph.get(described["url"]).status_code == 401
    assert graph.get(described["url"], headers={"Authorization": "Bearer nope"}).status_code == 401


def test_download_urls_expire_after_five_minutes(graph):
    media_id = upload(graph).get_json()["id"]
    url = graph.get(f"/{VERSION}/{media_id}", headers=AUTH).get_json()["url"]
    graph.post("/_sandbox/clock", json={"advance": 301})
    assert graph.get(url, headers=AUTH).status_code == 404
    fresh = graph.get(f"/{VERSION}/{media_id}", headers=AUTH).get_json()["url"]
    assert graph.get(fresh, headers=AUTH).data == JPEG
    assert graph.get(fresh.replace("hash=", "hash=0"), headers=AUTH).status_code == 404


def test_uploaded_media_lives_thirty_days(graph):
    media_id = upload(graph).get_json()["id"]
    graph.post("/_sandbox/clock", json={"advance": 29 * 24 * 3600})
    assert graph.get(f"/{VERSION}/{media_id}", headers=AUTH).status_code == 200
    graph.post("/_sandbox/clock", json={"advance": 2 * 24 * 3600})
    assert error_of(graph.get(f"/{VERSION}/{media_id}", headers=AUTH))["error_subcode"] == 33


@pytest.mark.parametrize(
    "data, mime_type, fragment",
    [
        pytest.param(b"GIF89a", "image/gif", "Unsupported", id="unsupported-type"),
        pytest.param(b"x" * (5 * 1024 * 1024 + 1), "image/png", "at most", id="image-over-5mb"),
        pytest.param(b"RIFF" + b"x" * (500 * 1024), "image/webp", "at most", id="sticker-over-500kb"),
    ],
)
def test_bad_uploads_are_131053(graph, data, mime_type, fragment):
    response = upload(graph, data, mime_type)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == 131053 and fragment in error["error_data"]["details"]


def test_an_upload_needs_messaging_product_and_a_file(graph):
    assert error_of(upload(graph, messaging_product="sms"))["code"] == 100
    response = graph.post(UPLOAD_URL, data={"messaging_product": "whatsapp"}, headers=AUTH,
                          content_type="multipart/form-data")
    assert error_of(response)["code"] == 100 and "file" in error_of(response)["error_data"]["details"]


def test_delete_media(graph):
    media_id = upload(graph).get_json()["id"]
    assert graph.delete(f"/{VERSION}/{media_id}", headers=AUTH).get_json() == {"success": True}
    assert graph.get(f"/{VERSION}/{media_id}", headers=AUTH).status_code == 400


def test_sending_uploaded_media_by_id(graph):
    customer_writes(graph)
    image_id = upload(graph).get_json()["id"]
    audio_id = upload(graph, b"ID3audio", "audio/mpeg").get_json()["id"]
    send(graph, {"to": CUSTOMER, "type": "image", "image": {"id": image_id, "caption": "Look"}})
    send(graph, {"to": CUSTOMER, "type": "image", "image": {"id": audio_id}})
    good, mismatched = graph.get("/_sandbox/messages").get_json()["data"]
    assert good["failure"] is None
    assert mismatched["failure"]["code"] == 131053 and "audio/mpeg" in mismatched["failure"]["error_data"]["details"]
