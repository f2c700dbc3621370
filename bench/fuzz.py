"""Mutation fuzzing of every byte the network can hand a ``QQGatewayConnection``.

Transcripts of real exchanges with the fake platform (token, ``/gateway/bot``, the upgrade,
Hello, READY, dispatches, ACKs, op 7, op 9, close frames, resumes) are recorded once. Each
case replays one transcript up to a random step, mutates the bytes there (bit flips, splices,
HTTP status lines and headers, chunked bodies, JSON fields, frame headers, lengths, opcodes,
close codes) or the time between steps, feeds what follows, and lets the timers run. A case
fails if anything escapes the core or a promise breaks: a timer left in the past, a connection
with nothing armed, two gateway sockets, a reconnect delay that is not a number of seconds.

    python -m bench.fuzz --cases 1000000 [--seed 0] [--jobs 2]
    python -m bench.fuzz --case 12345          # replay one case and show its traceback

Cases are numbered; case N is the same on every run and with any number of jobs.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import random
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from wsproto.utilities import generate_accept_token

from qqproto import (
    Action,
    CloseSocket,
    Fatal,
    GatewayConfig,
    OpenSocket,
    QQGatewayConnection,
    ReconnectScheduled,
    SendData,
    State,
)
from qqproto.testing import FakeQQPlatform, PlatformConfig, ServerSend

GATEWAY_HOST = "gateway.fuzz"
PLATFORM = PlatformConfig(heartbeat_interval_ms=10_000, session_lifetime=600.0, token_ttl=900)
CLIENT = GatewayConfig(
    app_id=PLATFORM.app_id,
    client_secret=PLATFORM.client_secret,
    api_base="https://api.fuzz",
    token_url="https://bots.fuzz/app/getAppAccessToken",
)
# How many recorded steps follow the mutated one, and how many timers run after the transcript.
SUFFIX = 12
TIMERS_AFTER = 6


@dataclass(frozen=True)
class Step:
    """One input the client got, ``dt`` seconds after the previous one."""

    kind: str  # "open", "data" (b"" is EOF), "fail", "timer" or "close"
    sock_id: int = 0
    data: bytes = b""
    dt: float = 0.0


@dataclass(frozen=True)
class Transcript:
    """Every input a client seeded with ``seed`` got in one recorded exchange, and every action it took."""

    name: str
    seed: int
    steps: tuple[Step, ...]
    actions: tuple[Action, ...]


# ---------------------------------------------------------------- recording real exchanges


class Recorder:
    """The client and the fake platform wired directly, with no latency; records every input the client gets."""

    def __init__(self, seed: int) -> None:
        self.platform = FakeQQPlatform(PLATFORM, rng=random.Random(seed))
        self.platform.gateway_url = f"wss://{GATEWAY_HOST}/websocket"
        self.client = QQGatewayConnection(CLIENT, random.Random(seed))
        self.now = self.last = 0.0
        self.steps: list[Step] = []
        self.actions: list[Action] = []
        self.client.start(self.now)
        self.pump()

    def record(self, kind: str, sock_id: int = 0, data: bytes = b"") -> None:
        self.steps.append(Step(kind, sock_id, data, self.now - self.last))
        self.last = self.now

    def pump(self) -> None:
        """Carry out what either side asked for until both are quiet."""
        while True:
            actions = self.client.next_actions()
            self.actions += actions
            for action in actions:
                if isinstance(action, OpenSocket):
                    if self.platform.connection_made(action.sock_id, self.now):
                        self.record("open", action.sock_id)
                        self.client.socket_opened(action.sock_id, self.now)
                    else:
                        self.record("fail", action.sock_id)
                        self.client.socket_failed(action.sock_id, "connection refused", self.now)
                elif isinstance(action, SendData):
                    self.platform.receive_data(action.sock_id, action.data, self.now)
                elif isinstance(action, CloseSocket):
                    self.platform.receive_data(action.sock_id, b"", self.now)
            server_actions = self.platform.next_actions()
            for server_action in server_actions:
                data = server_action.data if isinstance(server_action, ServerSend) else b""
                self.record("data", server_action.conn_id, data)
                self.client.receive_data(server_action.conn_id, data, self.now)
            if not actions and not server_actions:
                return

    def advance(self, seconds: float) -> None:
        """Move time on, serving both sides' timers when they fall due."""
        end = self.now + seconds
        while True:
            client_due, platform_due = self.client.next_timer(), self.platform.next_timer()
            due = [t for t in (client_due, platform_due) if t is not None and t <= end]
            if not due:
                break
            self.now = max(self.now, min(due))
            if client_due is not None and client_due <= self.now:
                self.record("timer")
                self.client.handle_timer(self.now)
            if platform_due is not None and platform_due <= self.now:
                self.platform.handle_timer(self.now)
            self.pump()
        self.now = end

    def fault(self, inject: Callable[[FakeQQPlatform, float], None], then: float = 5.0) -> None:
        """Make something go wrong on the platform, then let ``then`` seconds pass."""
        inject(self.platform, self.now)
        self.pump()
        self.advance(then)

    def events(self, count: int, size: int = 40) -> None:
        """The platform dispatches ``count`` messages of ``size`` characters."""
        for n in range(count):
            self.platform.push_event("GROUP_AT_MESSAGE_CREATE", {"id": f"m{n}", "content": "x" * size}, self.now)
        self.pump()


def life(r: Recorder) -> None:
    """A day in brief: connect, events, heartbeats, op 7, 4009, op 9 both ways, a drop, token refresh, close."""
    r.advance(1)
    r.events(3)
    r.advance(25)
    r.fault(lambda p, now: p.send_reconnect(now))
    r.events(2)
    r.fault(lambda p, now: p.close_gateway(4009, now))
    r.fault(lambda p, now: p.invalidate_session(now, resumable=True))
    r.fault(lambda p, now: p.invalidate_session(now, resumable=False), then=10)
    r.events(2, size=300)
    r.fault(lambda p, now: p.drop_connections(now))
    r.advance(900)
    r.events(1, size=70_000)
    r.client.close(r.now)
    r.record("close")
    r.pump()
    r.advance(10)


def refusals(r: Recorder) -> None:
    """Answers that are not what the client hoped for: 503 upgrades, token 5xx, 4004, resumes refused, silence."""
    r.platform.fail_upgrades(2)
    r.platform.fail_token_endpoint(1, 503)
    r.advance(30)
    r.fault(lambda p, now: p.expire_tokens(now))
    r.fault(lambda p, now: p.close_gateway(4009, now), then=30)
    r.platform.fail_next_resumes(1, resumable=False)
    r.fault(lambda p, now: p.send_reconnect(now), then=30)
    r.fault(lambda p, now: p.close_gateway(4006, now), then=30)
    r.fault(lambda p, now: p.go_silent(now), then=60)
    r.fault(lambda p, now: p.close_gateway(4914, now))


SCENARIOS: dict[str, Callable[[Recorder], None]] = {"life": life, "refusals": refusals}


def record_transcripts(seeds: tuple[int, ...] = (0, 1)) -> list[Transcript]:
    """A transcript per scenario and seed, from a real exchange with the fake platform."""
    transcripts = []
    for name, scenario in SCENARIOS.items():
        for seed in seeds:
            recorder = Recorder(seed)
            scenario(recorder)
            transcripts.append(Transcript(name, seed, tuple(recorder.steps), tuple(recorder.actions)))
    return transcripts


# ---------------------------------------------------------------- mutating bytes

INTERESTING_BYTES = b'\x00\x01\x7e\x7f\x80\x81\x88\x89\x8a\xff0 9"{}[]:,\r\n\\'
INTERESTING_NUMBERS = [
    "0",
    "-1",
    "1",
    "126",
    "65535",
    "65536",
    "2147483648",
    "9223372036854775808",
    "18446744073709551617",
    "1e309",
    "-0.0",
    "NaN",
    "Infinity",
    "1.5",
    "4009",
    "4914",
    "99999",
    "100017",
    "40023001",
    "11244",
    "100016",
    "429",
    "401",
    "1" + "0" * 400,
]
INTERESTING_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63,
    10**30,
    1.5,
    float("nan"),
    "",
    "x" * 500,
    "4009",
    [],
    {},
    [[[[[]]]]],
    {"op": 0},
    "\ud800",
    "QQBot x",
    100017,
    40023001,
    11244,
    100016,
    10**400,
    "接口调用超过频率限制",
    "tok\r\nX: 1",
    "tok 测",
    "ws://h:1/p",
    "wss://[::1",
    "http://x/",
    "wss://" + "a" * 70 + ".x/",
    "wss://gateway.fuzz/网关",
    "wss://gateway.fuzz/a b",
    "wss://gateway.fuzz:99999/",
    "wss://网关.fuzz/",
]
CLOSE_CODES = [
    0,
    999,
    1000,
    1001,
    1002,
    1004,
    1005,
    1006,
    1011,
    1015,
    2999,
    3000,
    4000,
    4001,
    4004,
    4006,
    4008,
    4009,
    4010,
    4013,
    4014,
    4015,
    4900,
    4913,
    4914,
    4915,
    4999,
    5000,
    65535,
]
NUMBER = re.compile(rb"-?\d+(\.\d+)?")
KEY = re.compile(rb"(?i)\r\nsec-websocket-key: *([^\r\n]+)")
ACCEPT = re.compile(rb"(?i)(\r\nsec-websocket-accept: *)[A-Za-z0-9+/]{27}=")


def bit_flip(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    return bytes(buf)


def interesting_byte(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    return data[:at] + bytes([rng.choice(INTERESTING_BYTES)]) + data[at + 1 :]


def insert_bytes(rng: random.Random, data: bytes) -> bytes:
    at = rng.randint(0, len(data))
    junk = rng.randbytes(rng.randint(1, 16)) if rng.random() < 0.5 else rng.choice([b"\r\n", b"\r\n\r\n", b"\x00" * 9])
    return data[:at] + junk + data[at:]


def delete_range(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    return data[:at] + data[at + rng.randint(1, 32) :]


def duplicate_range(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    piece = data[at : at + rng.randint(1, 64)]
    return data[:at] + piece * rng.randint(2, 4) + data[at:]


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randint(0, len(data))]


def number(rng: random.Random, data: bytes) -> bytes:
    """Replace one number in the text (a status, a length, a seq, a close code) with an awkward one."""
    found = list(NUMBER.finditer(data))
    if not found:
        return interesting_byte(rng, data)
    match = rng.choice(found)
    return data[: match.start()] + rng.choice(INTERESTING_NUMBERS).encode() + data[match.end() :]


BYTE_MUTATIONS = [bit_flip, interesting_byte, insert_bytes, delete_range, duplicate_range, truncate, number]


def mutate_json(rng: random.Random, text: bytes) -> bytes:
    """Change one field of a JSON document: a new value, a missing key, or a new key."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return rng.choice(BYTE_MUTATIONS)(rng, text)
    holders: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, (dict, list)):
            holders.append(node)
            for child in node.values() if isinstance(node, dict) else node:
                walk(child)

    walk(doc)
    if not holders:
        doc = rng.choice(INTERESTING_VALUES)
    else:
        holder = rng.choice(holders)
        keys = list(holder) if isinstance(holder, dict) else list(range(len(holder)))
        choice = rng.random()
        if keys and choice < 0.7:
            holder[rng.choice(keys)] = rng.choice(INTERESTING_VALUES)
        elif keys and choice < 0.85:
            del holder[rng.choice(keys)]
        elif isinstance(holder, dict):
            holder[rng.choice(["op", "s", "t", "d", "id", "code", "url", "session_id", "heartbeat_interval"])] = (
                rng.choice(INTERESTING_VALUES)
            )
    return json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------- mutating HTTP answers


def split_http(data: bytes) -> tuple[bytes, bytes] | None:
    end = data.find(b"\r\n\r\n")
    if not data.startswith(b"HTTP/") or end < 0:
        return None
    return data[: end + 4], data[end + 4 :]


def with_length(head: bytes, body: bytes) -> bytes:
    """The head with its Content-Length set to the body's size."""
    return re.sub(rb"(?i)content-length: *\d+", b"content-length: %d" % len(body), head) + body


def http_status(rng: random.Random, head: bytes, body: bytes) -> bytes:
    status = rng.choice(
        [
            b"100",
            b"101",
            b"200",
            b"204",
            b"301",
            b"400",
            b"401",
            b"403",
            b"404",
            b"429",
            b"500",
            b"503",
            b"999",
            b"20",
            b"abc",
        ]
    )
    return re.sub(rb"^HTTP/1\.1 \d+", b"HTTP/1.1 " + status, head) + body


def http_header(rng: random.Random, head: bytes, body: bytes) -> bytes:
    extra = rng.choice(
        [
            b"Transfer-Encoding: chunked\r\n",
            b"Content-Length: 0\r\n",
            b"Content-Length: %d\r\n" % (len(body) + rng.choice([-1, 1, 10**6])),
            b"X-Long: " + b"a" * rng.choice([100, 70_000]) + b"\r\n",
            b"Bad Header\r\n",
            b" folded\r\n",
            b"Connection: keep-alive\r\n",
            b"Upgrade: websocket\r\n",
        ]
    )
    lines = head[:-2].split(b"\r\n")
    lines.insert(rng.randint(1, len(lines) - 1), extra[:-2])
    if rng.random() < 0.3:
        del lines[rng.randint(1, len(lines) - 1)]
    return b"\r\n".join(lines) + b"\r\n" + body


def http_chunked(rng: random.Random, head: bytes, body: bytes) -> bytes:
    """The same answer with its body sent chunked, in random pieces, sometimes with extensions or trailers."""
    head = re.sub(rb"(?i)content-length: *\d+\r\n", b"", head)
    head = head[:-2] + b"Transfer-Encoding: chunked\r\n\r\n"
    out = bytearray()
    pos = 0
    while pos < len(body):
        size = rng.randint(1, max(1, len(body) - pos))
        extension = b";x=y" if rng.random() < 0.1 else b""
        out += b"%x%s\r\n%s\r\n" % (size, extension, body[pos : pos + size])
        pos += size
    out += b"0\r\nX-Trailer: t\r\n\r\n" if rng.random() < 0.1 else b"0\r\n\r\n"
    return head + bytes(out)


def http_body(rng: random.Random, head: bytes, body: bytes) -> bytes:
    return with_length(head, mutate_json(rng, body))


HTTP_MUTATIONS = [http_status, http_header, http_chunked, http_body, http_body]


# ---------------------------------------------------------------- mutating WebSocket frames


def frame(first: int, payload: bytes, *, length_bytes: int = 0, mask: bytes = b"") -> bytes:
    size = len(payload)
    mask_bit = 0x80 if mask else 0
    if length_bytes == 8 or size > 0xFFFF:
        head = bytes((first, mask_bit | 127)) + size.to_bytes(8, "big")
    elif length_bytes == 2 or (not length_bytes and size >= 126):
        head = bytes((first, mask_bit | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((first, mask_bit | size))
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + payload


def split_frames(data: bytes) -> list[tuple[int, bytes]] | None:
    """The (first byte, payload) of each whole unmasked frame in ``data``, or None if it is not just that."""
    frames = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data) or data[pos + 1] & 0x80:
            return None
        length, start = data[pos + 1], pos + 2
        if length >= 126:
            start += 2 if length == 126 else 8
            length = int.from_bytes(data[pos + 2 : start], "big")
        if start + length > len(data):
            return None
        frames.append((data[pos], data[start : start + length]))
        pos = start + length
    return frames


def ws_payload(rng: random.Random, first: int, payload: bytes) -> bytes:
    return frame(first, mutate_json(rng, payload) if first & 0x0F == 1 else rng.choice(BYTE_MUTATIONS)(rng, payload))


def ws_header(rng: random.Random, first: int, payload: bytes) -> bytes:
    """The same payload under a strange header: other opcode or flags, a mask, a length of another width."""
    choice = rng.randrange(4)
    if choice == 0:
        first = (first & 0xF0) | rng.choice([0, 1, 2, 3, 7, 8, 9, 10, 11, 15])
    elif choice == 1:
        first ^= rng.choice([0x80, 0x40, 0x20, 0x10])
    if choice == 2:
        return frame(first, payload, mask=rng.randbytes(4))
    return frame(first, payload, length_bytes=rng.choice([0, 2, 8]))


def ws_length(rng: random.Random, first: int, payload: bytes) -> bytes:
    """A length field that lies: shorter, longer, or absurd."""
    encoded = frame(first, payload)
    header = 2 if len(payload) < 126 else 4 if len(payload) <= 0xFFFF else 10
    wrong = rng.choice([0, 1, 125, 126, 127, max(0, len(payload) - 1), len(payload) + 1, 65535, 65536, 2**64 - 1])
    if wrong < 126 and rng.random() < 0.5:
        return bytes((first, wrong)) + encoded[header:]
    return bytes((first, 127)) + (wrong % 2**64).to_bytes(8, "big") + encoded[header:]


def ws_fragments(rng: random.Random, first: int, payload: bytes) -> bytes:
    """The message in continuation frames, sometimes with a control frame between them."""
    cut = rng.randint(0, len(payload))
    middle = frame(0x89, rng.randbytes(rng.randint(0, 8))) if rng.random() < 0.3 else b""
    last = 0x80 if rng.random() < 0.9 else 0x00
    return frame(first & 0x0F, payload[:cut]) + middle + frame(last, payload[cut:])


def ws_control(rng: random.Random, first: int, payload: bytes) -> bytes:
    """A control frame before this one: ping, pong, or a close with an odd code or reason."""
    kind = rng.randrange(3)
    if kind == 0:
        control = frame(0x89, rng.randbytes(rng.choice([0, 4, 125, 126])))
    elif kind == 1:
        control = frame(0x8A, b"unsolicited")
    else:
        code = rng.choice(CLOSE_CODES).to_bytes(2, "big")
        reason = rng.choice([b"", b"bye", b"\xff\xfe", "关闭".encode(), b"r" * 124])
        control = frame(0x88, rng.choice([b"", b"\x03", code, code + reason]))
    return control + frame(first, payload)


WS_MUTATIONS = [ws_payload, ws_payload, ws_payload, ws_header, ws_length, ws_fragments, ws_control]


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """Mutate one input, knowing its structure when it has one: an HTTP answer, or gateway frames."""
    if rng.random() < 0.25:
        return rng.choice(BYTE_MUTATIONS)(rng, data)
    parts = split_http(data)
    if parts is not None:
        head, rest = parts
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            return rng.choice(HTTP_MUTATIONS)(rng, head, rest)
        if rng.random() < 0.3:
            return rng.choice(HTTP_MUTATIONS)(rng, head, rest)
        return head + mutate_bytes(rng, rest) if rest else http_header(rng, head, rest)
    frames = split_frames(data)
    if not frames:
        return rng.choice(BYTE_MUTATIONS)(rng, data)
    index = rng.randrange(len(frames))
    encoded = [frame(first, payload) for first, payload in frames]
    encoded[index] = rng.choice(WS_MUTATIONS)(rng, *frames[index])
    return b"".join(encoded)


# ---------------------------------------------------------------- cases


def mutate(rng: random.Random, transcript: tuple[Step, ...]) -> tuple[Step, ...]:
    """A prefix of ``transcript`` kept as it was, then mutated steps, then a short suffix."""
    data_steps = [i for i, step in enumerate(transcript) if step.kind == "data" and step.data]
    at = rng.choice(data_steps)
    steps = list(transcript[: at + SUFFIX])
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        last = len(steps) - 1
        if last < 0:
            break
        where = rng.randint(min(at, last), min(at + 3, last))
        step = steps[where]
        choice = rng.random()
        if step.kind == "data" and step.data and choice < 0.75:
            steps[where] = replace(step, data=mutate_bytes(rng, step.data))
        elif choice < 0.85 and step.kind == "data" and len(step.data) > 1:
            cut = rng.randint(1, len(step.data) - 1)
            halves = [replace(step, data=step.data[:cut]), replace(step, data=step.data[cut:], dt=0.0)]
            steps[where : where + 1] = halves
        elif choice < 0.88:
            steps.insert(where, Step("timer", dt=rng.choice([0.0, 0.5, 1.5, 11.0, 31.0, 3600.0, 86400.0 * 3])))
        elif choice < 0.91:
            steps.insert(where, Step(rng.choice(["data", "fail"]), step.sock_id))  # EOF, or the socket broke
        elif choice < 0.95:
            other = rng.choice(transcript)
            steps.insert(where, replace(other, sock_id=step.sock_id, dt=0.0))
        else:
            del steps[where]
    return tuple(steps)


def case_input(index: int, seed: int, transcripts: list[Transcript]) -> tuple[int, tuple[Step, ...]]:
    """Case ``index``: the client's rng seed (the recording's, so the prefix replays exactly) and its inputs."""
    transcript = transcripts[index % len(transcripts)]
    return transcript.seed, mutate(random.Random(f"{seed}:{index}"), transcript.steps)


class Broken(AssertionError):
    """A promise the connection broke on some input."""


def run_case(client_seed: int, steps: tuple[Step, ...]) -> list[Action]:
    """Feed ``steps`` to a fresh client as a correct transport would; return its actions, raise if anything broke."""
    conn = QQGatewayConnection(CLIENT, random.Random(client_seed))
    now = 0.0
    asked: set[int] = set()
    opened: set[int] = set()
    gateways: set[int] = set()
    taken: list[Action] = []
    # wsproto draws the upgrade key from os.urandom: answer each upgrade with the token for the key it sent.
    accept_tokens: dict[int, bytes] = {}

    def drain() -> None:
        actions = conn.next_actions()
        taken.extend(actions)
        for action in actions:
            if isinstance(action, OpenSocket):
                asked.add(action.sock_id)
                if action.host == GATEWAY_HOST:
                    gateways.add(action.sock_id)
                    if len(gateways) > 1:
                        raise Broken("a second gateway socket while one is open")
            elif isinstance(action, CloseSocket):
                gateways.discard(action.sock_id)
            elif isinstance(action, SendData) and action.data.startswith(b"GET "):
                key = KEY.search(action.data)
                if key is not None:
                    accept_tokens[action.sock_id] = generate_accept_token(key.group(1))
            elif isinstance(action, ReconnectScheduled):
                if not (math.isfinite(action.delay) and action.delay >= 0):
                    raise Broken(f"reconnect delay {action.delay!r}")
            elif isinstance(action, Fatal) and not action.reason:
                raise Broken("Fatal without a reason")

    def timer() -> None:
        due = conn.next_timer()
        if due is not None and due <= now:
            conn.handle_timer(now)
            after = conn.next_timer()
            if after is not None and after <= now:
                raise Broken(f"next_timer() {after!r} is not after now {now!r} once handle_timer ran")
        drain()

    conn.start(now)
    drain()
    for step in steps:
        now += step.dt
        if step.kind == "timer":
            timer()
        elif step.kind == "close":
            conn.close(now)
        elif step.sock_id not in asked:
            continue
        elif step.kind == "open" and step.sock_id not in opened:
            opened.add(step.sock_id)
            conn.socket_opened(step.sock_id, now)
        elif step.kind == "fail":
            opened.add(step.sock_id)
            conn.socket_failed(step.sock_id, "connection reset", now)
        elif step.kind == "data" and step.sock_id in opened:
            token = accept_tokens.get(step.sock_id)
            data = step.data if token is None else ACCEPT.sub(lambda m: m.group(1) + token, step.data, count=1)
            conn.receive_data(step.sock_id, data, now)
        drain()
    for _ in range(TIMERS_AFTER):
        due = conn.next_timer()
        if due is None:
            break
        now = max(now, due)
        timer()
    if conn.state not in (State.CLOSED, State.FATAL) and conn.next_timer() is None:
        raise Broken(f"stuck in {conn.state.value} with nothing armed")
    json.dumps(conn.health(now).to_dict())
    return taken


def run_range(job: tuple[int, int, int]) -> tuple[int, list[tuple[int, str]]]:
    """Run cases ``start`` to ``stop``; the findings as (case, traceback)."""
    start, stop, seed = job
    transcripts = record_transcripts()
    findings = []
    for index in range(start, stop):
        client_seed, steps = case_input(index, seed, transcripts)
        try:
            run_case(client_seed, steps)
        except Exception:
            findings.append((index, traceback.format_exc()))
    return stop - start, findings


def batches(cases: int, seed: int, size: int = 2000) -> Iterator[tuple[int, int, int]]:
    for start in range(0, cases, size):
        yield start, min(start + size, cases), seed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="how many cases to run")
    parser.add_argument("--seed", type=int, default=0, help="which family of cases")
    parser.add_argument("--jobs", type=int, default=multiprocessing.cpu_count(), help="worker processes")
    parser.add_argument("--case", type=int, help="run this one case and print what it found")
    args = parser.parse_args(argv)
    if args.case is not None:
        _, findings = run_range((args.case, args.case + 1, args.seed))
        print(findings[0][1] if findings else f"case {args.case}: nothing found")
        return 1 if findings else 0
    started = time.perf_counter()
    done, found = 0, []
    with multiprocessing.Pool(args.jobs) as pool:
        for count, findings in pool.imap_unordered(run_range, batches(args.cases, args.seed)):
            done += count
            found += findings
            rate = done / (time.perf_counter() - started)
            print(f"\r{done:>10,} cases  {rate:8,.0f} cases/s  {len(found)} findings", end="", file=sys.stderr)
    elapsed = time.perf_counter() - started
    print(file=sys.stderr)
    for index, trace in sorted(found)[:20]:
        print(f"--- case {index} (python -m bench.fuzz --seed {args.seed} --case {index})\n{trace}")
    print(f"{done:,} cases in {elapsed:.0f}s, {done / elapsed:,.0f} cases/s, {len(found)} findings")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
