"""A botpy bot on qqproto's gateway: written as botpy's examples are, with one changed import.

    QQBOT_APPID=... QQBOT_SECRET=... python examples/botpy_echo.py [--thread]

``--api-base``, ``--token-url`` and ``--ca-file`` point it somewhere else, such as the fake
platform that ``qqproto serve-fake`` prints.
"""

from __future__ import annotations

import argparse
import os
import ssl
from typing import Any

import botpy
from botpy.message import C2CMessage, GroupMessage

from qqproto_botpy import Client  # was: from botpy import Client


class EchoClient(Client):
    async def on_ready(self) -> None:
        print(f"ready as {self.robot.name}", flush=True)

    async def on_group_at_message_create(self, message: GroupMessage) -> None:
        await message.reply(content=f"echo: {message.content}")

    async def on_c2c_message_create(self, message: C2CMessage) -> None:
        await message.reply(content=f"echo: {message.content}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thread", action="store_true", help="keep the connection on its own thread")
    parser.add_argument("--api-base", help="the OpenAPI base URL (default: the platform's)")
    parser.add_argument("--token-url", help="the token endpoint (default: the platform's)")
    parser.add_argument("--ca-file", help="trust this CA instead of the system's")
    args = parser.parse_args(argv)
    options: dict[str, Any] = {"api_base": args.api_base, "token_url": args.token_url}
    if args.ca_file:
        options["ssl_context"] = ssl.create_default_context(cafile=args.ca_file)
    client = EchoClient(
        intents=botpy.Intents(public_messages=True), transport="thread" if args.thread else "asyncio", **options
    )
    client.run(appid=os.environ["QQBOT_APPID"], secret=os.environ["QQBOT_SECRET"])


if __name__ == "__main__":
    main()
