"""The client secret and the access token never show in a repr, a notice, a health snapshot or an error."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from helpers import CONFIG, SECRET, TOKEN, Harness

from qqproto import Action, GatewayConfig, LocalProtocolError, SendData
from qqproto.testing import PLANS, Simulation


def visible_text(h: Harness) -> str:
    parts = [repr(CONFIG), str(CONFIG), repr(h.conn), json.dumps(h.conn.health(h.now).to_dict())]
    parts += [repr(action) for action in h.log]
    parts += [str(action) for action in h.log if not isinstance(action, SendData)]
    return "\n".join(parts)


def test_secret_and_token_never_appear_in_what_the_core_shows() -> None:
    h = Harness().connect()
    h.dispatch()
    h.server_close(4004)
    h.advance(60)
    h.send(h.ws_id(), {"op": 9, "d": False})
    h.advance(60)
    h.refuse_connections = True
    h.deliver(h.ws_id(), b"")
    h.advance(600)
    text = visible_text(h)
    assert SECRET not in text
    assert TOKEN not in text
    # The bytes on the wire do carry them, so the check above is not vacuous.
    wire = b"".join(a.data for a in h.log if isinstance(a, SendData))
    assert SECRET.encode() in wire and TOKEN.encode() in wire


def test_secret_absent_from_fatal_reasons() -> None:
    h = Harness()
    h.token_answers = [(401, {"code": 100016, "message": "invalid appid or secret"})]
    h.start()
    assert SECRET not in visible_text(h)


def test_secret_absent_from_config_errors() -> None:
    with pytest.raises(LocalProtocolError) as info:
        GatewayConfig(app_id="1", client_secret=SECRET, shard=(5, 1))
    assert SECRET not in str(info.value)


def test_a_simulated_day_shows_neither_the_secret_nor_any_issued_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    plan = PLANS["production"]
    config = GatewayConfig(app_id=plan.platform.app_id, client_secret=plan.platform.client_secret)
    sim = Simulation(plan, seed=1, days=1, client_config=config)
    client = sim.client
    seen: list[str] = []
    wire = bytearray()
    drain = client.next_actions

    def recording_next_actions() -> list[Action]:
        actions = drain()
        for action in actions:
            seen.extend((repr(action), str(action)))
            if isinstance(action, SendData):
                wire.extend(action.data)
        if actions:
            seen.append(json.dumps(client.health(sim.now).to_dict()))
        return actions

    client.next_actions = recording_next_actions  # type: ignore[method-assign]
    report = sim.run()
    misuses: list[Callable[[], None]] = [
        lambda: client.socket_opened(10**9, sim.now),
        lambda: client.handle_timer(float("nan")),
    ]
    for misuse in misuses:
        with pytest.raises(LocalProtocolError) as info:
            misuse()
        seen.append(str(info.value))
    seen += [repr(client), repr(config), str(config), json.dumps(report.to_dict()), caplog.text]
    seen += [record.getMessage() for record in caplog.records]
    text = "\n".join(seen)

    secret = plan.platform.client_secret
    tokens = sim.platform.issued_tokens
    assert len(tokens) >= 12  # a 7200 s token is replaced about every two hours
    # The plain HTTP requests carry the secret and the first token, so the search is not vacuous.
    assert secret.encode() in wire and tokens[0].encode() in wire
    assert secret not in text
    assert [token for token in tokens if token in text] == []
