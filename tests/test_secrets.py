"""The client secret and the access token never show in a repr, a notice, a health snapshot or an error."""

from __future__ import annotations

import json

import pytest
from helpers import CONFIG, SECRET, TOKEN, Harness

from qqproto import GatewayConfig, LocalProtocolError, SendData


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
