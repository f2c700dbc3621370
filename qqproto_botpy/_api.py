"""``client.api`` on qqproto's send policy: botpy's four message sends, everything else unchanged.

The policy fills ``msg_seq`` per ``msg_id`` when the caller passes none (botpy always sent 1, so a
second reply to one message was refused as a duplicate), retries transient errors with backoff,
refreshes the token once on 11244, and turns an expired reply into an active message when
allowed.  A final failure raises botpy's own exception, carrying the platform's code.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Optional

from botpy.api import BotAPI
from botpy.errors import AuthenticationFailedError, ServerError
from botpy.http import BotHttp

from qqproto import MessageFailed, OutgoingMessage, Scene

__all__ = ["BridgeAPI", "Sender", "botpy_error"]

#: Hands a message to the gateway and waits for its outcome: the platform's message id, or the failure.
Sender = Callable[[OutgoingMessage], Awaitable[Optional[str]]]

# Platform codes that mean the token was refused (reference §9.4); botpy raises these as 401s.
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
        content: Optional[str] = None,
        embed: Any = None,
        ark: Any = None,
        message_reference: Any = None,
        media: Any = None,
        msg_id: Optional[str] = None,
        msg_seq: Optional[int] = None,
        event_id: Optional[str] = None,
        markdown: Any = None,
        keyboard: Any = None,
    ) -> dict[str, Any]:
        fields = dict(msg_type=msg_type, content=content, embed=embed, ark=ark, message_reference=message_reference)
        fields.update(media=media, markdown=markdown, keyboard=keyboard)
        return await self._post(Scene.GROUP, group_openid, fields, msg_id, msg_seq, event_id)

    async def post_c2c_message(
        self,
        openid: str,
        msg_type: int = 0,
        content: Optional[str] = None,
        embed: Any = None,
        ark: Any = None,
        message_reference: Any = None,
        media: Any = None,
        msg_id: Optional[str] = None,
        msg_seq: Optional[int] = None,
        event_id: Optional[str] = None,
        markdown: Any = None,
        keyboard: Any = None,
    ) -> dict[str, Any]:
        fields = dict(msg_type=msg_type, content=content, embed=embed, ark=ark, message_reference=message_reference)
        fields.update(media=media, markdown=markdown, keyboard=keyboard)
        return await self._post(Scene.C2C, openid, fields, msg_id, msg_seq, event_id)

    async def post_message(
        self,
        channel_id: str,
        content: Optional[str] = None,
        embed: Any = None,
        ark: Any = None,
        message_reference: Any = None,
        image: Optional[str] = None,
        file_image: Any = None,
        msg_id: Optional[str] = None,
        event_id: Optional[str] = None,
        markdown: Any = None,
        keyboard: Any = None,
    ) -> Any:
        fields = dict(content=content, embed=embed, ark=ark, message_reference=message_reference, image=image)
        fields.update(markdown=markdown, keyboard=keyboard)
        if file_image is not None:  # a multipart upload: botpy's own request
            fields.update(file_image=file_image, msg_id=msg_id, event_id=event_id)
            return await super().post_message(channel_id, **fields)
        return await self._post(Scene.CHANNEL, channel_id, fields, msg_id, None, event_id)

    async def post_dms(
        self,
        guild_id: str,
        content: Optional[str] = None,
        embed: Any = None,
        ark: Any = None,
        message_reference: Any = None,
        image: Optional[str] = None,
        file_image: Any = None,
        msg_id: Optional[str] = None,
        event_id: Optional[str] = None,
        markdown: Any = None,
        keyboard: Any = None,
    ) -> Any:
        fields = dict(content=content, embed=embed, ark=ark, message_reference=message_reference, image=image)
        fields.update(markdown=markdown, keyboard=keyboard)
        if file_image is not None:  # a multipart upload: botpy's own request
            fields.update(file_image=file_image, msg_id=msg_id, event_id=event_id)
            return await super().post_dms(guild_id, **fields)
        return await self._post(Scene.DM, guild_id, fields, msg_id, None, event_id)

    async def _post(
        self,
        scene: Scene,
        target: str,
        fields: dict[str, Any],
        msg_id: Optional[str],
        msg_seq: Optional[int],
        event_id: Optional[str],
    ) -> dict[str, Any]:
        """Send as botpy would (its null fields included), and answer as botpy did: the sent message's id."""
        message = OutgoingMessage(scene, target, fields, msg_id=msg_id, event_id=event_id, msg_seq=msg_seq)
        return {"id": await self._send(message)}
