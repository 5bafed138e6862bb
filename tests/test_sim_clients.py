"""/client on the simulator: search, create, update, delete, module links."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import Sim


def _linked_client(sim: Sim) -> tuple[dict, dict]:
    link = next(iter(sim.world.links.values()))
    return sim.world.clients[link["clientId"]], link


async def test_search_by_module_link_email_name_and_phone(sim: Sim) -> None:
    client, link = _linked_client(sim)
    status, body = await sim.get("/client", {"moduleId": "crm", "externalId": link["externalId"]})
    assert status == 200
    assert body["clients"] == [client]
    assert link in body["clientLinks"]
    merchant = client["merchantId"]
    for params in (
        {"email": client["email"].upper()},
        {"firstName": client["firstName"], "lastName": client["lastName"]},
        {"phoneNumber": client["mobilePhoneNumber"]},
    ):
        status, body = await sim.get("/client", {"merchantId": merchant, **params})
        assert status == 200
        assert client["id"] in [c["id"] for c in body["clients"]], params


@pytest.mark.parametrize(
    "params",
    [
        {"moduleId": "crm"},
        {"merchantId": "1", "firstName": "Lea"},
        {"email": "a@b.c"},
        {"merchantId": "1", "email": "a@b.c", "phoneNumber": "1"},
        {"moduleId": "crm", "externalId": "X", "email": "a@b.c"},
    ],
)
async def test_search_refuses_mixed_or_half_criteria(sim: Sim, params: dict) -> None:
    status, body = await sim.get("/client", params)
    assert status == 400
    assert body["code"] == 400


async def test_client_create_update_and_delete(sim: Sim) -> None:
    merchant = next(iter(sim.world.merchants))
    status, body = await sim.call(
        "POST",
        "/client",
        json_body={
            "merchantId": merchant,
            "firstName": "Ada",
            "lastName": "Byron",
            "email": "ada@example.org",
            "dateOfBirth": {"day": 10, "month": 12, "year": 1990},
        },
    )
    assert status == 200
    client = body["client"]
    assert body["clientLinks"] == []
    status, body = await sim.get(f"/client/{client['id']}")
    assert body["client"] == client
    status, body = await sim.call(
        "PUT", f"/client/{client['id']}", json_body={"mobilePhoneNumber": "+15145550000"}
    )
    assert status == 200
    assert body["client"]["mobilePhoneNumber"] == "+15145550000"
    assert body["client"]["modifiedOn"] > client["modifiedOn"]
    status, _ = await sim.call("DELETE", f"/client/{client['id']}")
    assert status == 204
    status, body = await sim.get(f"/client/{client['id']}")
    assert status == 404


@pytest.mark.parametrize(
    "body",
    [
        {"merchantId": None, "firstName": "A", "lastName": "B"},
        {"merchantId": 1, "firstName": "A", "lastName": "B"},
        {"merchantId": "x", "firstName": "A", "lastName": "B"},
        {"firstName": "A"},
        {"firstName": 3, "lastName": "B"},
        {"lastName": "B", "firstName": "A", "email": "not-an-email"},
        {"lastName": "B", "firstName": "A", "dateOfBirth": {"day": 31, "month": 2, "year": 1990}},
        {"lastName": "B", "firstName": "A", "remindBySMS": "yes"},
    ],
)
async def test_client_create_validates(sim: Sim, body: dict) -> None:
    body = {"merchantId": next(iter(sim.world.merchants)), **body}
    before = len(sim.world.clients)
    status, error = await sim.call("POST", "/client", json_body=body)
    assert status in (400, 404)
    assert error["code"] == status
    assert len(sim.world.clients) == before


async def test_client_with_future_booking_cannot_be_deleted(sim: Sim) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    booking = next(
        b for b in sim.world.bookings.values() if b["startsOn"] > now and b["status"] != "Cancelled"
    )
    status, body = await sim.call("DELETE", f"/client/{booking['client']['id']}")
    assert status == 409
    assert body["error"] == "ClientHasFutureBookings"
    assert booking["client"]["id"] in sim.world.clients


async def test_deleting_a_client_blanks_their_data_in_past_bookings(sim: Sim) -> None:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    client_id = next(iter(sim.world.clients))
    email = sim.world.clients[client_id]["email"]
    bookings = [b for b in sim.world.bookings.values() if b["client"]["id"] == client_id]
    for booking in bookings:  # a client with future bookings cannot go: cancel those first
        if booking["startsOn"] > now and booking["status"] != "Cancelled":
            status, _ = await sim.call(
                "PUT", f"/booking/{booking['bookingId']}", json_body={"status": "Cancelled"}
            )
            assert status == 200
    status, _ = await sim.call("DELETE", f"/client/{client_id}")
    assert status == 204
    assert bookings
    for booking in bookings:
        status, body = await sim.get(f"/booking/{booking['bookingId']}")
        assert body["booking"]["client"]["id"] == client_id
        assert body["booking"]["client"]["email"] == ""
        assert body["booking"]["client"]["lastName"] == ""
    state = await sim.control("GET", "/_sim/state")
    assert email not in str(state)


async def test_module_link_get_put_and_conflict(sim: Sim) -> None:
    client, link = _linked_client(sim)
    status, body = await sim.get(f"/client/{client['id']}/moduleLink/crm")
    assert status == 200
    assert body == {"link": link, "client": client}
    other = next(c for c in sim.world.clients.values() if (c["id"], "crm") not in sim.world.links)
    status, body = await sim.get(f"/client/{other['id']}/moduleLink/crm")
    assert status == 404
    status, body = await sim.call(
        "PUT",
        f"/client/{other['id']}/moduleLink/crm",
        json_body={"externalId": "POS-9", "metadata": {"tier": "gold"}},
    )
    assert status == 200
    assert body["link"]["externalId"] == "POS-9"
    assert body["link"]["metadata"] == {"tier": "gold"}
    status, body = await sim.call(
        "PUT", f"/client/{client['id']}/moduleLink/crm", json_body={"externalId": "POS-9"}
    )
    assert status == 409
    assert body["error"] == "ModuleConflict"
    status, body = await sim.call(
        "PUT", f"/client/{other['id']}/moduleLink/crm", json_body={"metadata": {"a": 1}}
    )
    assert status == 400


async def test_client_path_ids_must_be_integers(sim: Sim) -> None:
    for path in ("/client/abc", "/client/-1", "/client/1.5"):
        status, body = await sim.get(path)
        assert status == 400, path
        assert "clientId" in body["message"]
