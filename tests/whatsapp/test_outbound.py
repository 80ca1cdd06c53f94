"""Message bodies: structural mistakes fail before the network, with a message that says which."""

import pytest

from shared.whatsapp import outbound


def test_media_takes_exactly_one_source_and_only_the_fields_its_type_allows():
    assert outbound.media_content("audio", media_id="9") == {"id": "9"}
    assert outbound.media_content("video", link="https://x/v.mp4", caption="c") == {
        "link": "https://x/v.mp4", "caption": "c",
    }  # fmt: skip
    with pytest.raises(ValueError, match="exactly one"):
        outbound.media_content("image", media_id="1", link="https://x/i.jpg")
    with pytest.raises(ValueError, match="exactly one"):
        outbound.media_content("image")
    with pytest.raises(ValueError, match="no caption"):
        outbound.media_content("sticker", media_id="1", caption="hi")
    with pytest.raises(ValueError, match="filename"):
        outbound.media_content("image", media_id="1", filename="a.jpg")
    with pytest.raises(ValueError, match="media type"):
        outbound.media_content("gif", media_id="1")


def test_reply_buttons_limits():
    three = [("a", "A"), ("b", "B"), ("c", "C")]
    assert len(outbound.reply_buttons_content("Pick", three)["action"]["buttons"]) == 3
    with pytest.raises(ValueError, match="1 to 3"):
        outbound.reply_buttons_content("Pick", [*three, ("d", "D")])
    with pytest.raises(ValueError, match="1 to 3"):
        outbound.reply_buttons_content("Pick", [])
    with pytest.raises(ValueError, match="unique"):
        outbound.reply_buttons_content("Pick", [("a", "Yes"), ("b", "Yes")])


def test_a_media_header_on_reply_buttons_passes_through():
    header = {"type": "image", "image": {"id": "77"}}
    assert outbound.reply_buttons_content("Pick", [("a", "A")], header=header)["header"] == header


def test_list_limits_count_rows_across_sections():
    def section(rows):
        return {"title": "S", "rows": [{"id": f"r{i}", "title": f"R{i}"} for i in range(rows)]}

    assert outbound.list_content("Pick", "Open", [section(5), section(5)])["action"]["button"] == "Open"
    with pytest.raises(ValueError, match="rows in total"):
        outbound.list_content("Pick", "Open", [section(6), section(5)])
    with pytest.raises(ValueError, match="sections"):
        outbound.list_content("Pick", "Open", [section(1)] * 11)
    with pytest.raises(ValueError, match="button"):
        outbound.list_content("Pick", "", [section(1)])


def test_text_limits():
    assert outbound.text_content("x" * 4096) == {"body": "x" * 4096}
    with pytest.raises(ValueError):
        outbound.text_content("x" * 4097)
    with pytest.raises(ValueError):
        outbound.text_content("")


def test_callback_data_limit_and_envelope():
    body = outbound.message_envelope("+1", "text", {"body": "hi"}, biz_opaque_callback_data="x" * 512)
    assert body["biz_opaque_callback_data"] == "x" * 512
    with pytest.raises(ValueError, match="512"):
        outbound.message_envelope("+1", "text", {"body": "hi"}, biz_opaque_callback_data="x" * 513)
    with pytest.raises(ValueError):
        outbound.message_envelope("", "text", {"body": "hi"})


def test_template_and_contacts_need_their_identifying_fields():
    assert outbound.template_content("hello_world", "en_US") == {"name": "hello_world", "language": {"code": "en_US"}}
    with pytest.raises(ValueError):
        outbound.template_content("hello_world", "")
    with pytest.raises(ValueError, match="formatted_name"):
        outbound.contacts_content([{"phones": [{"phone": "+1"}]}])
