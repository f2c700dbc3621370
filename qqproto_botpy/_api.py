"""``client.api`` on qqproto's send policy: botpy's four message sends, everything else unchanged.

The policy fills ``msg_seq`` per ``msg_id`` when the caller passes none (botpy always sent 1, so a
second reply to one message was refused as a duplicate), retries transient errors with backoff,
refreshes the token once on 11244, and turns an expired reply into an active message when
allowed.  A final failure raises botpy's own exception, carrying the platform's code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from botpy.api import BotAPI
from botpy.errors import AuthenticationFailedError, ServerError
from botpy.http import BotHttp

from qqproto import MessageFailed, OutgoingMessage, Scene

__all__ = ["BridgeAPI", "Sender", "botpy_error"]

#: Hands a message to the gateway and waits for its outcome: the platform's message id, or the failure.
Sender = Callable[[OutgoingMessage], Awaitable[str | None]]

#: botpy's method for each scene, and the name of its target argument.
BOTPY_SENDS: dict[Scene, tuple[str, str]] = {
    Scene.GROUP: ("post_group_message", "group_openid"),
    Scene.C2C: ("post_c2c_message", "openid"),
    Scene.CHANNEL: ("post_message", "channel_id"),
    Scene.DM: ("post_dms", "guild_id"),
}
# Platform codes that mean the token was refused (docs/protocol.md §9.4); botpy raises these as 401s.
TOKEN_CODES = frozenset({11241, 11242, 11243, 11244})


def botpy_error(failure: MessageFailed) -> Exception:
    """The exception botpy raises for the same refusal, with ``code`` and ``trace_id`` attached."""
    kind = AuthenticationFailedError if failure.code in TOKEN_CODES else ServerError
    error: Exception = kind(failure.reason)
    error.code = failure.code  # type: ignore[attr-defined]
    error.trace_id = failure.trace_id  # type: ignore[attr-defined]
    return error


class BridgeAPI(BotAPI):
    """botpy's ``BotAPI`` whose message sends go through qqproto's send policy."""

    def __init__(self, http: BotHttp, send: Sender) -> None:
        super().__init__(http=http)
        self._send = send

    async def post_group_message(
        self,
        group_openid: str,
        msg_type: int = 0,
        content: str | None = None,
        embed: Any = None,
        ark: Any = None,
        message_reference: Any = None,
        media: Any = None,
        msg_id: str | None = None,
        msg_seq: int | None = None,
        event_id: str | None = None,
        markdown: Any = None,
        keyboard: Any = None,
    ) -> Any:
        return await self._post(Scene.GROUP, locals())

    async def post_c2c_message(
        self,
        openid: str,
        msg_type: int = 0,
        content: str | None = None,
        embed: Any = None,
        ark: Any = None,
        message_reference: Any = None,
        media: Any = None,
        msg_id: str | None = None,
        msg_seq: int | None = None,
        event_id: str | None = None,
        markdown: Any = None,
        keyboard: Any = None,
    ) -> Any:
        return await self._post(Scene.C2C, locals())

    async def post_message(
        self,
        channel_id: str,
        content: str | None = None,
        embed: Any = None,
        ark: Any = None,
        message_reference: Any = None,
        image: str | None = None,
        file_image: Any = None,
        msg_id: str | None = None,
        event_id: str | None = None,
        markdown: Any = None,
        keyboard: Any = None,
    ) -> Any:
        return await self._post(Scene.CHANNEL, locals())

    async def post_dms(
        self,
        guild_id: str,
        content: str | None = None,
        embed: Any = None,
        ark: Any = None,
        message_reference: Any = None,
        image: str | None = None,
        file_image: Any = None,
        msg_id: str | None = None,
        event_id: str | None = None,
        markdown: Any = None,
        keyboard: Any = None,
    ) -> Any:
        return await self._post(Scene.DM, locals())

    async def _post(self, scene: Scene, arguments: dict[str, Any]) -> Any:
        """Send as botpy would (its null fields included), and answer as botpy did: the sent message's id.

        A guild message with ``file_image`` is a multipart upload, which stays botpy's own request.
        """
        method, target_name = BOTPY_SENDS[scene]
        fields = {name: value for name, value in arguments.items() if name != "self"}
        if fields.get("file_image") is not None:
            return await getattr(super(), method)(**fields)
        target = fields.pop(target_name)
        msg_id, msg_seq, event_id = fields.pop("msg_id"), fields.pop("msg_seq", None), fields.pop("event_id")
        fields.pop("file_image", None)
        message = OutgoingMessage(scene, target, fields, msg_id=msg_id, event_id=event_id, msg_seq=msg_seq)
        return {"id": await self._send(message)}
