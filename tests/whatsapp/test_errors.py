"""The error table follows the reference (§3) code by code; unknown codes fall back on the HTTP status."""

import pytest

from shared.whatsapp.errors import (
    CLASSIFICATIONS,
    ErrorAction,
    ErrorScope,
    GraphAPIError,
    GraphConnectionError,
    GraphMalformedResponseError,
    GraphTimeoutError,
    classify,
)

# Every code the reference lists: the §3 table, 80008 (§4 limits) and the §7 template-creation codes.
REFERENCE_CODES = [
    0, 3, 10, *range(200, 300), 4, 100, 190, 368, 470, 80007, 80008, 130429, 130472, 130497,
    131000, 131005, 131008, 131009, 131016, 131021, 131026, 131031, 131042, 131045, 131047,
    131048, 131049, 131050, 131051, 131052, 131053, 131056, 131057, 131064, 132000, 132001,
    132005, 132007, 132012, 132015, 132016, 133010, 133016, 135000, 2388293, 2388299,
]  # fmt: skip

R, W, N, P, T = (
    {ErrorAction.RETRY_BACKOFF, ErrorAction.RETRY_AFTER, ErrorAction.PAIR_LIMITED},
    {ErrorAction.NEEDS_TEMPLATE},
    {ErrorAction.PERMANENT},
    {ErrorAction.PAUSE_SENDER},
    {ErrorAction.INVALID_TOKEN},
)
# The reference's Reaction column, letter by letter.
REFERENCE_REACTION = {
    0: T, 3: N, 10: N, 200: N, 299: N, 4: R, 100: N, 190: T, 368: P, 470: W, 80007: R, 130429: R,
    130472: N, 130497: N, 131000: R, 131005: N, 131008: N, 131009: N, 131016: R, 131021: N,
    131026: N, 131031: P, 131042: P, 131045: P, 131047: W, 131048: P, 131049: N, 131050: N,
    131051: N, 131052: N, 131053: N, 131056: R, 131057: R, 131064: P, 132000: N, 132001: N,
    132005: N, 132007: N, 132012: N, 132015: N, 132016: N, 133010: P, 133016: R, 135000: N,
}  # fmt: skip


def test_every_code_in_the_reference_has_a_classification():
    missing = [code for code in REFERENCE_CODES if code not in CLASSIFICATIONS]
    assert missing == []
    assert all(classify(code).known for code in REFERENCE_CODES)


@pytest.mark.parametrize("code", sorted(REFERENCE_REACTION))
def test_each_code_gets_the_reaction_the_reference_advises(code):
    assert classify(code).action in REFERENCE_REACTION[code]


def test_only_the_codes_the_reference_marks_r_are_ever_retried():
    retried = {code for code in REFERENCE_CODES if classify(code).retryable}
    assert retried == {4, 80007, 80008, 130429, 131000, 131016, 131056, 131057, 133016}


@pytest.mark.parametrize(
    ("code", "action", "scope", "retry_after"),
    [
        (130429, ErrorAction.RETRY_AFTER, ErrorScope.NUMBER, 1.0),  # retry quickly, lower the number's rate
        (131056, ErrorAction.PAIR_LIMITED, ErrorScope.RECIPIENT, 6.0),  # only that recipient, after >= 6 s
        (131057, ErrorAction.RETRY_AFTER, ErrorScope.NUMBER, 60.0),  # maintenance, ~1 min
        (80007, ErrorAction.RETRY_AFTER, ErrorScope.WABA, 3600.0),  # next hour window
        (4, ErrorAction.RETRY_AFTER, ErrorScope.APP, 300.0),  # minutes, app-wide
        (131047, ErrorAction.NEEDS_TEMPLATE, ErrorScope.RECIPIENT, None),
        (470, ErrorAction.NEEDS_TEMPLATE, ErrorScope.RECIPIENT, None),  # treated as 131047
        (131026, ErrorAction.PERMANENT, ErrorScope.RECIPIENT, None),  # mark contact unreachable
        (131050, ErrorAction.PERMANENT, ErrorScope.RECIPIENT, None),  # opt-out
        (132015, ErrorAction.PERMANENT, ErrorScope.TEMPLATE, None),  # template paused: stop campaign
        (132001, ErrorAction.PERMANENT, ErrorScope.TEMPLATE, None),
        (131042, ErrorAction.PAUSE_SENDER, ErrorScope.WABA, None),  # billing: whole WABA
        (131048, ErrorAction.PAUSE_SENDER, ErrorScope.NUMBER, None),  # spam limit on the number
        (133010, ErrorAction.PAUSE_SENDER, ErrorScope.NUMBER, None),
        (190, ErrorAction.INVALID_TOKEN, ErrorScope.TENANT, None),
        (0, ErrorAction.INVALID_TOKEN, ErrorScope.TENANT, None),
        (131000, ErrorAction.RETRY_BACKOFF, ErrorScope.MESSAGE, None),
    ],
)
def test_representative_codes_carry_the_references_scope_and_delay(code, action, scope, retry_after):
    classification = classify(code)
    assert (classification.action, classification.scope, classification.retry_after) == (action, scope, retry_after)


def test_pausing_permission_and_token_problems_raise_an_alert_ordinary_failures_do_not():
    assert all(classify(code).alert for code in (368, 131031, 131042, 131048, 133010, 0, 190, 3, 250, 131005))
    assert not any(classify(code).alert for code in (131026, 131047, 130429, 132000))


def test_131000_is_retried_a_few_times_only():
    assert classify(131000).max_attempts == 5
    assert classify(131016).max_attempts is None


def test_subcodes_the_reference_distinguishes_have_their_own_reason():
    expired, password = classify(190, 463), classify(190, 460)
    assert expired.action is password.action is ErrorAction.INVALID_TOKEN
    assert "password" in password.reason and "password" not in expired.reason
    assert classify(100, 2388293).scope is ErrorScope.TEMPLATE
    assert classify(100).scope is ErrorScope.MESSAGE
    # An undistinguished subcode keeps the code's advice.
    assert classify(130429, 2494055) == classify(130429)


@pytest.mark.parametrize(
    ("code", "http_status", "is_transient", "action"),
    [
        (999999, 500, None, ErrorAction.RETRY_BACKOFF),
        (999999, 503, None, ErrorAction.RETRY_BACKOFF),
        (999999, 400, None, ErrorAction.PERMANENT),
        (999999, 404, None, ErrorAction.PERMANENT),
        (999999, 429, None, ErrorAction.RETRY_AFTER),
        (999999, 400, True, ErrorAction.RETRY_BACKOFF),
        (999999, None, None, ErrorAction.PERMANENT),  # asynchronous, no status: never resend blindly
        (None, 502, None, ErrorAction.RETRY_BACKOFF),  # a proxy's HTML error page
    ],
)
def test_unknown_codes_fall_back_on_the_http_status(code, http_status, is_transient, action):
    classification = classify(code, http_status=http_status, is_transient=is_transient)
    assert classification.action is action
    assert classification.known is False and classification.alert is True


def test_a_known_code_is_never_overridden_by_the_http_status():
    assert classify(131047, http_status=500).action is ErrorAction.NEEDS_TEMPLATE
    assert classify(131000, http_status=400).action is ErrorAction.RETRY_BACKOFF


def test_retry_delays():
    assert [classify(131056).delay_for(n) for n in (1, 2, 3)] == [6.0, 16.0, 64.0]  # >= 6 s, then 4^n
    assert classify(130429).delay_for(4) == 1.0
    backoff = [classify(131016).delay_for(n) for n in range(1, 12)]
    assert backoff[:3] == [2.0, 4.0, 8.0] and max(backoff) == 300.0
    assert classify(131026).delay_for(1) is None
    with pytest.raises(ValueError):
        classify(131016).delay_for(0)


def test_graph_api_error_from_the_references_sample_body():
    body = {
        "error": {
            "message": "(#130429) Rate limit hit",
            "type": "OAuthException",
            "code": 130429,
            "error_data": {
                "messaging_product": "whatsapp",
                "details": "Cloud API message throughput has been reached.",
            },
            "error_subcode": 2494055,
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam",
        }
    }
    error = GraphAPIError.from_body(429, body)
    assert (error.http_status, error.code, error.subcode) == (429, 130429, 2494055)
    assert error.details == "Cloud API message throughput has been reached."
    assert error.error_data["messaging_product"] == "whatsapp"
    assert error.fbtrace_id == "Az8or2yhqkZfEZ-_4Qn_Bam"
    assert error.error_type == "OAuthException"
    assert error.action is ErrorAction.RETRY_AFTER and error.retryable and error.retry_after == 1.0
    assert "130429" in str(error) and "Az8or2yhqkZfEZ-_4Qn_Bam" in str(error)


def test_graph_api_error_edge_shapes():
    management = GraphAPIError.from_body(400, {"error": {"code": 100, "error_data": "Invalid parameter 'name'"}})
    assert management.details == "Invalid parameter 'name'" and management.action is ErrorAction.PERMANENT
    bare = GraphAPIError.from_body(503, None)
    assert bare.code is None and bare.action is ErrorAction.RETRY_BACKOFF
    header_wins = GraphAPIError.from_body(429, {"error": {"code": 130429}}, retry_after=12.0)
    assert header_wins.retry_after == 12.0
    flagged = GraphAPIError.from_body(400, {"error": {"code": 424242, "is_transient": True}})
    assert flagged.is_transient is True and flagged.action is ErrorAction.RETRY_BACKOFF


def test_transport_errors_say_whether_a_resend_could_duplicate():
    connect = GraphTimeoutError("t", method="POST", path="1/messages", phase="connect")
    read = GraphTimeoutError("t", method="POST", path="1/messages", phase="read")
    read_get = GraphTimeoutError("t", method="GET", path="1", phase="read")
    refused = GraphConnectionError("c", method="POST", path="1/messages", request_sent=False)
    reset = GraphConnectionError("c", method="POST", path="1/messages", request_sent=True)
    unreadable = GraphMalformedResponseError("m", method="POST", path="1/messages", http_status=200)
    assert [e.ambiguous for e in (connect, read, read_get, refused, reset, unreadable)] == [
        False, True, False, False, True, True,
    ]  # fmt: skip
    assert connect.safe_to_retry and not read.safe_to_retry
    with pytest.raises(ValueError):
        GraphTimeoutError("t", method="GET", path="1", phase="write")
