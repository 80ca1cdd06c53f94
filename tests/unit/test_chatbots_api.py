"""Chatbots through the API: the draft (flows, nodes, edges, whole graphs), publishing, versions, simulation."""

from __future__ import annotations

from shared.services import numbers
from tests.factories import make_org, make_user

API = "/api/v1/chatbots"


def create_chatbot(client, headers, name="Support bot", **fields):
    response = client.post(API, json={"name": name, **fields}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def create_flow(client, headers, chatbot, name="Main", **fields):
    response = client.post(f"{API}/{chatbot['id']}/flows", json={"name": name, **fields}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def flows_of(client, headers, chatbot):
    return {f["name"]: f["is_main"] for f in client.get(f"{API}/{chatbot['id']}/flows", headers=headers).get_json()}


def test_chatbot_crud(client, admin_headers):
    bot = create_chatbot(client, admin_headers, description="Answers first", variables={"plan": "basic"})
    assert (bot["is_active"], bot["live_version"], bot["variables"]) == (False, None, {"plan": "basic"})

    listed = client.get(API, headers=admin_headers).get_json()
    assert [b["id"] for b in listed] == [bot["id"]]
    renamed = client.patch(f"{API}/{bot['id']}", json={"name": "Sales bot"}, headers=admin_headers)
    assert renamed.get_json()["name"] == "Sales bot"
    taken = client.post(API, json={"name": "Sales bot"}, headers=admin_headers)
    assert (taken.status_code, taken.get_json()["code"]) == (409, "chatbot_name_taken")

    assert client.delete(f"{API}/{bot['id']}", headers=admin_headers).status_code == 204
    gone = client.get(f"{API}/{bot['id']}", headers=admin_headers)
    assert (gone.status_code, gone.get_json()["code"]) == (404, "chatbot_not_found")


def test_bodies_with_unknown_fields_or_bad_values_are_422(client, admin_headers):
    unknown = client.post(API, json={"name": "Bot", "colour": "blue"}, headers=admin_headers)
    empty = client.post(API, json={"name": ""}, headers=admin_headers)
    for response in (unknown, empty):
        assert (response.status_code, response.get_json()["code"]) == (422, "validation_error")


def test_another_organizations_chatbot_is_a_404(client, db_session, admin_headers, login):
    other = make_org(db_session)
    other_headers = login(make_user(db_session, other, role="org_admin"))
    theirs = create_chatbot(client, other_headers, name="Theirs")
    flow = create_flow(client, other_headers, theirs)

    for method, url in [("GET", f"{API}/{theirs['id']}"), ("PATCH", f"{API}/{theirs['id']}"),
                        ("DELETE", f"{API}/{theirs['id']}"), ("POST", f"{API}/{theirs['id']}/publish"),
                        ("GET", f"{API}/{theirs['id']}/flows"), ("GET", f"{API}/{theirs['id']}/flows/{flow['id']}"),
                        ("GET", f"{API}/{theirs['id']}/flows/{flow['id']}/graph")]:
        response = client.open(url, method=method, json={} if method == "PATCH" else None, headers=admin_headers)
        assert response.status_code == 404, (method, url)
    assert client.get(API, headers=admin_headers).get_json() == []
    assert client.get(f"{API}/{theirs['id']}", headers=other_headers).status_code == 200


def test_a_flow_of_another_chatbot_is_a_404_under_this_one(client, admin_headers):
    first, second = create_chatbot(client, admin_headers, name="A"), create_chatbot(client, admin_headers, name="B")
    flow = create_flow(client, admin_headers, first)
    response = client.get(f"{API}/{second['id']}/flows/{flow['id']}", headers=admin_headers)
    assert (response.status_code, response.get_json()["code"]) == (404, "flow_not_found")


def test_exactly_one_main_flow(client, admin_headers):
    bot = create_chatbot(client, admin_headers)
    main = create_flow(client, admin_headers, bot, name="Main")
    other = create_flow(client, admin_headers, bot, name="Billing")
    assert flows_of(client, admin_headers, bot) == {"Main": True, "Billing": False}

    third = create_flow(client, admin_headers, bot, name="Sales", is_main=True)  # moves it
    assert flows_of(client, admin_headers, bot) == {"Main": False, "Billing": False, "Sales": True}
    client.patch(f"{API}/{bot['id']}/flows/{other['id']}", json={"is_main": True}, headers=admin_headers)
    assert flows_of(client, admin_headers, bot) == {"Main": False, "Billing": True, "Sales": False}

    unset = client.patch(f"{API}/{bot['id']}/flows/{other['id']}", json={"is_main": False}, headers=admin_headers)
    assert (unset.status_code, unset.get_json()["code"]) == (409, "main_flow_required")
    refused = client.delete(f"{API}/{bot['id']}/flows/{other['id']}", headers=admin_headers)
    assert (refused.status_code, refused.get_json()["code"]) == (409, "main_flow_required")
    assert flows_of(client, admin_headers, bot) == {"Main": False, "Billing": True, "Sales": False}

    for flow in (main, third):
        assert client.delete(f"{API}/{bot['id']}/flows/{flow['id']}", headers=admin_headers).status_code == 204
    assert client.delete(f"{API}/{bot['id']}/flows/{other['id']}", headers=admin_headers).status_code == 204
    assert flows_of(client, admin_headers, bot) == {}


def test_a_numbers_default_chatbot_must_be_one_of_its_organization(client, db_session, organization, admin_headers,
                                                                     login):
    number = numbers.create_number(db_session, org=organization, waba_id="1234567", phone_number_id="5550001",
                                   display_phone_number="15550001", access_token="EAAG-test-token",
                                   app_secret="test-secret")
    other = make_org(db_session)
    theirs = create_chatbot(client, login(make_user(db_session, other, role="org_admin")), name="Theirs")
    ours = create_chatbot(client, admin_headers)

    refused = client.patch(f"/api/v1/numbers/{number.id}", json={"default_chatbot_id": theirs["id"]},
                           headers=admin_headers)
    assert (refused.status_code, refused.get_json()["code"]) == (422, "default_chatbot_invalid")
    assert refused.get_json()["details"]["field"] == "default_chatbot_id"

    accepted = client.patch(f"/api/v1/numbers/{number.id}", json={"default_chatbot_id": ours["id"]},
                            headers=admin_headers)
    assert accepted.get_json()["default_chatbot_id"] == ours["id"]
    client.delete(f"{API}/{ours['id']}", headers=admin_headers)
    assert client.get(f"/api/v1/numbers/{number.id}", headers=admin_headers).get_json()["default_chatbot_id"] is None


def test_activating_needs_a_published_version(client, admin_headers):
    bot = create_chatbot(client, admin_headers)
    response = client.post(f"{API}/{bot['id']}/activate", headers=admin_headers)
    assert (response.status_code, response.get_json()["code"]) == (409, "chatbot_not_published")


def test_publishing_a_chatbot_without_flows_is_refused(client, admin_headers):
    bot = create_chatbot(client, admin_headers)
    response = client.post(f"{API}/{bot['id']}/publish", headers=admin_headers)
    assert (response.status_code, response.get_json()["code"]) == (422, "chatbot_invalid")
    assert response.get_json()["details"]["problems"][0]["message"] == "The chatbot has no flow yet"
    assert client.get(f"{API}/{bot['id']}/versions", headers=admin_headers).get_json() == []


def test_a_viewer_reads_chatbots_but_cannot_change_them(client, db_session, organization, admin_headers, login):
    bot = create_chatbot(client, admin_headers)
    viewer = login(make_user(db_session, organization, role="viewer"))
    assert client.get(f"{API}/{bot['id']}", headers=viewer).status_code == 200
    response = client.patch(f"{API}/{bot['id']}", json={"name": "Mine"}, headers=viewer)
    assert (response.status_code, response.get_json()["code"]) == (403, "permission_denied")


# nodes, edges and graphs (node data as shared/flows documents it)

def node(node_id, node_type, x=0.0, y=0.0, **data):
    return {"id": node_id, "type": node_type, "position": {"x": x, "y": y}, "data": data}


def edge(source, target, handle=None):
    return {"id": f"{source}-{target}-{handle}", "source": source, "target": target, "sourceHandle": handle}


def plans_graph(greeting="Hi!"):
    """start (keyword "plans") → message → question (buttons) → condition → action (tag) → message → end."""
    return {
        "nodes": [
            node("start", "start", trigger="keyword", keywords=["plans"]),
            node("hello", "message", 120.5, -40, kind="text", text=greeting),
            node("ask", "question", text="Which plan?", answer_type="choice", variable="plan",
                 buttons=[{"id": "pro", "title": "Pro"}, {"id": "free", "title": "Free"}]),
            node("check", "condition", branches=[{"id": "is_pro", "expression": "vars.plan == 'pro'"}]),
            node("tag", "action", actions=[{"type": "tag", "tag": "pro-lead"}]),
            node("thanks", "message", kind="text", text="Thanks, {{vars.plan}} it is."),
            node("end", "end"),
        ],
        "edges": [edge("start", "hello"), edge("hello", "ask"), edge("ask", "check"),
                  edge("check", "tag", "is_pro"), edge("check", "thanks", "else"), edge("tag", "thanks"),
                  edge("thanks", "end")],
    }


def graph_url(chatbot, flow):
    return f"{API}/{chatbot['id']}/flows/{flow['id']}/graph"


def drafted_chatbot(client, headers, graph=None):
    bot = create_chatbot(client, headers)
    flow = create_flow(client, headers, bot)
    response = client.put(graph_url(bot, flow), json=graph or plans_graph(), headers=headers)
    assert response.status_code == 200, response.get_json()
    return bot, flow


def test_nodes_and_edges_one_at_a_time(client, admin_headers):
    bot = create_chatbot(client, admin_headers)
    flow = create_flow(client, admin_headers, bot)
    nodes, edges = f"{API}/{bot['id']}/flows/{flow['id']}/nodes", f"{API}/{bot['id']}/flows/{flow['id']}/edges"
    start = node("start", "start", trigger="any")
    assert client.post(nodes, json=start, headers=admin_headers).get_json() == start
    client.post(nodes, json=node("bye", "end", message="Bye"), headers=admin_headers)
    again = client.post(nodes, json=node("bye", "end"), headers=admin_headers)
    assert (again.status_code, again.get_json()["code"]) == (409, "node_id_taken")

    link = client.post(edges, json={"id": "e1", "source": "start", "target": "bye"}, headers=admin_headers)
    assert link.get_json() == {"id": "e1", "source": "start", "target": "bye", "sourceHandle": None}
    moved = client.patch(f"{nodes}/bye", json={"position": {"x": 300, "y": 10.25}}, headers=admin_headers)
    assert moved.get_json() == node("bye", "end", 300, 10.25, message="Bye")
    assert client.get(f"{nodes}/bye", headers=admin_headers).get_json() == moved.get_json()

    assert client.delete(f"{nodes}/bye", headers=admin_headers).status_code == 204  # and the edge to it
    assert client.get(edges, headers=admin_headers).get_json() == []
    assert [n["id"] for n in client.get(nodes, headers=admin_headers).get_json()] == ["start"]
    gone = client.get(f"{edges}/e1", headers=admin_headers)
    assert (gone.status_code, gone.get_json()["code"]) == (404, "edge_not_found")


def test_a_node_of_an_unknown_type_or_with_bad_data_is_refused_with_its_problems(client, admin_headers):
    bot = create_chatbot(client, admin_headers)
    flow = create_flow(client, admin_headers, bot)
    nodes = f"{API}/{bot['id']}/flows/{flow['id']}/nodes"

    unknown = client.post(nodes, json=node("n1", "teleport"), headers=admin_headers)
    assert (unknown.status_code, unknown.get_json()["code"]) == (422, "node_invalid")
    assert [(p["node_id"], p["field"]) for p in unknown.get_json()["details"]["problems"]] == [("n1", "type")]

    bad = client.post(nodes, json=node("ask", "question", text="Age?", answer_type="colour", variable="age"),
                      headers=admin_headers)
    assert (bad.status_code, bad.get_json()["code"]) == (422, "node_invalid")
    assert "answer_type" in [p["field"] for p in bad.get_json()["details"]["problems"]]

    client.post(nodes, json=node("start", "start", trigger="any"), headers=admin_headers)
    broken = client.patch(f"{nodes}/start", json={"data": {"trigger": "moon"}}, headers=admin_headers)
    assert (broken.status_code, broken.get_json()["code"]) == (422, "node_invalid")
    assert client.get(f"{nodes}/start", headers=admin_headers).get_json()["data"] == {"trigger": "any"}
    assert client.get(nodes, headers=admin_headers).get_json() == [node("start", "start", trigger="any")]


def test_an_edge_joins_two_nodes_of_its_own_flow(client, admin_headers):
    bot = create_chatbot(client, admin_headers)
    main, other = create_flow(client, admin_headers, bot), create_flow(client, admin_headers, bot, name="Other")
    for flow, node_id in ((main, "start"), (other, "elsewhere")):
        client.post(f"{API}/{bot['id']}/flows/{flow['id']}/nodes", json=node(node_id, "start", trigger="any"),
                    headers=admin_headers)
    edges = f"{API}/{bot['id']}/flows/{main['id']}/edges"

    dangling = client.post(edges, json={"id": "e1", "source": "start", "target": "elsewhere"}, headers=admin_headers)
    assert (dangling.status_code, dangling.get_json()["code"]) == (422, "edge_dangling")
    assert dangling.get_json()["details"]["fields"] == ["target"]
    assert client.get(edges, headers=admin_headers).get_json() == []


def test_a_flow_exported_in_the_react_flow_shape_and_imported_back_is_the_same_flow(client, admin_headers):
    bot, flow = drafted_chatbot(client, admin_headers)
    exported = client.get(graph_url(bot, flow), headers=admin_headers).get_json()
    sent = plans_graph()
    assert sorted(exported["nodes"], key=lambda n: n["id"]) == sorted(sent["nodes"], key=lambda n: n["id"])
    assert sorted(exported["edges"], key=lambda e: e["id"]) == sorted(sent["edges"], key=lambda e: e["id"])

    copy = create_flow(client, admin_headers, bot, name="Copy")
    imported = client.put(graph_url(bot, copy), json=exported, headers=admin_headers)
    assert imported.get_json() == exported
    assert client.get(graph_url(bot, copy), headers=admin_headers).get_json() == exported


def test_a_graph_saved_as_react_flow_exports_it_keeps_the_flow_and_drops_the_view_state(client, admin_headers):
    bot, flow = drafted_chatbot(client, admin_headers)
    clean = client.get(graph_url(bot, flow), headers=admin_headers).get_json()
    # What React Flow's toObject() gives: the flow plus the editor's view state.
    exported = {
        "nodes": [{**n, "width": 180, "height": 40, "selected": False, "dragging": False,
                   "positionAbsolute": n["position"], "measured": {"width": 180, "height": 40}} for n in clean["nodes"]],
        "edges": [{**e, "targetHandle": None, "type": "smoothstep", "animated": False, "selected": False}
                  for e in clean["edges"]],
        "viewport": {"x": 0, "y": 0, "zoom": 1},
    }
    copy = create_flow(client, admin_headers, bot, name="From the editor")
    saved = client.put(graph_url(bot, copy), json=exported, headers=admin_headers)
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json() == clean
    typo = {**exported, "nodes": [{**exported["nodes"][0], "dataa": {}}, *exported["nodes"][1:]]}
    refused = client.put(graph_url(bot, copy), json=typo, headers=admin_headers)
    assert refused.status_code == 422  # anything else unknown is still refused


def test_a_whole_graph_with_problems_is_refused_with_each_and_changes_nothing(client, admin_headers):
    bot, flow = drafted_chatbot(client, admin_headers)
    before = client.get(graph_url(bot, flow), headers=admin_headers).get_json()
    bad = {"nodes": [node("start", "start", trigger="moon"), node("end", "end"), node("end", "end")],
           "edges": [edge("start", "nowhere")]}

    response = client.put(graph_url(bot, flow), json=bad, headers=admin_headers)
    assert (response.status_code, response.get_json()["code"]) == (422, "graph_invalid")
    problems = response.get_json()["details"]["problems"]
    assert {(p.get("node_id"), p.get("edge_id"), p["field"]) for p in problems} == {
        ("start", None, "trigger"), ("end", None, "id"), (None, "start-nowhere-None", "target")}
    assert client.get(graph_url(bot, flow), headers=admin_headers).get_json() == before

    unknown_field = client.put(graph_url(bot, flow), json={"nodes": [{**node("a", "end"), "colour": "red"}],
                                                           "edges": []}, headers=admin_headers)
    assert (unknown_field.status_code, unknown_field.get_json()["code"]) == (422, "validation_error")


def test_publishing_an_invalid_graph_is_refused_with_every_problem_listed(client, admin_headers):
    graph = plans_graph()
    graph["nodes"].append(node("lost", "end"))  # reached by nothing
    graph["edges"] = [e for e in graph["edges"] if e["sourceHandle"] != "else"]  # the condition's else branch
    bot, flow = drafted_chatbot(client, admin_headers, graph)

    response = client.post(f"{API}/{bot['id']}/publish", headers=admin_headers)
    assert (response.status_code, response.get_json()["code"]) == (422, "chatbot_invalid")
    problems = response.get_json()["details"]["problems"]
    assert {(p["flow_id"], p["node_id"]) for p in problems} == {(flow["id"], "lost"), (flow["id"], "check")}
    assert client.get(f"{API}/{bot['id']}/versions", headers=admin_headers).get_json() == []
    assert client.get(f"{API}/{bot['id']}", headers=admin_headers).get_json()["live_version"] is None


def simulate(client, headers, bot, **body):
    response = client.post(f"{API}/{bot['id']}/simulate", json=body, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def bot_texts(simulation):
    return [line["message"].get("text", {}).get("body") or line["message"]["interactive"]["body"]["text"]
            for line in simulation["transcript"] if line["from"] == "bot"]


def test_publish_then_rollback_and_versions_stay_as_published(client, admin, admin_headers):
    bot, flow = drafted_chatbot(client, admin_headers, plans_graph(greeting="Hello from v1"))
    first = client.post(f"{API}/{bot['id']}/publish", headers=admin_headers)
    assert first.status_code == 201, first.get_json()
    assert (first.get_json()["number"], first.get_json()["published_by_id"]) == (1, str(admin.id))
    assert client.post(f"{API}/{bot['id']}/activate", headers=admin_headers).get_json()["is_active"] is True

    client.patch(f"{API}/{bot['id']}/flows/{flow['id']}/nodes/hello",
                 json={"data": {"kind": "text", "text": "Hello from v2"}}, headers=admin_headers)
    second = client.post(f"{API}/{bot['id']}/publish", headers=admin_headers).get_json()
    assert second["number"] == 2
    assert client.get(f"{API}/{bot['id']}", headers=admin_headers).get_json()["live_version"] == 2
    assert [v["number"] for v in client.get(f"{API}/{bot['id']}/versions", headers=admin_headers).get_json()] == [2, 1]

    v1 = client.get(f"{API}/{bot['id']}/versions/1", headers=admin_headers).get_json()
    assert v1 == first.get_json()  # editing and publishing again left it as it was
    assert bot_texts(simulate(client, admin_headers, bot, version=1, messages=[{"type": "text", "text": "plans"}]))[0] \
        == "Hello from v1"
    assert client.patch(f"{API}/{bot['id']}/versions/1", json={}, headers=admin_headers).status_code == 405

    rolled = client.post(f"{API}/{bot['id']}/rollback", json={"version": 1}, headers=admin_headers)
    assert (rolled.status_code, rolled.get_json()["live_version"]) == (200, 1)
    assert len(client.get(f"{API}/{bot['id']}/versions", headers=admin_headers).get_json()) == 2  # nothing new
    missing = client.post(f"{API}/{bot['id']}/rollback", json={"version": 9}, headers=admin_headers)
    assert (missing.status_code, missing.get_json()["code"]) == (404, "chatbot_version_not_found")
    huge = client.get(f"{API}/{bot['id']}/versions/{2**70}", headers=admin_headers)
    assert (huge.status_code, huge.get_json()["code"]) == (404, "chatbot_version_not_found")


def test_simulate_a_small_flow_through_the_api(client, admin_headers, published):
    bot, _ = drafted_chatbot(client, admin_headers)
    result = simulate(client, admin_headers, bot, contact={"name": "Ana", "tags": []},
                      messages=[{"type": "text", "text": "Plans"}, {"type": "button", "id": "pro"}])

    assert result["status"] == "ended"
    assert result["variables"]["plan"] == "pro"
    assert bot_texts(result) == ["Hi!", "Which plan?", "Thanks, pro it is."]
    assert {"type": "tag", "tag": "pro-lead"} in result["actions"]
    assert published == []  # nothing was queued to send


def test_simulating_an_invalid_draft_or_with_bad_messages_is_422(client, admin_headers):
    bot = create_chatbot(client, admin_headers)
    invalid = client.post(f"{API}/{bot['id']}/simulate", json={"messages": []}, headers=admin_headers)
    assert (invalid.status_code, invalid.get_json()["code"]) == (422, "chatbot_invalid")
    for message in ({"type": "button"}, {"type": "text"}, {"type": "voice", "text": "hi"}):
        bad = client.post(f"{API}/{bot['id']}/simulate", json={"messages": [message]}, headers=admin_headers)
        assert (bad.status_code, bad.get_json()["code"]) == (422, "validation_error"), message
