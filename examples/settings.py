"""The bot's settings from the environment, shared by the examples (copy it along with one).

Against the real platform set ``QQBOT_APP_ID`` and ``QQBOT_SECRET``.  ``qqproto serve-fake --run
COMMAND`` sets those for its fake platform, together with ``QQBOT_API_BASE``, ``QQBOT_TOKEN_URL``
and ``QQBOT_CA_FILE`` (its throwaway CA), which point the bot at it.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

from qqproto import GatewayConfig, Intents


def gateway_config(**overrides: Any) -> GatewayConfig:
    """A config for the bot in ``QQBOT_APP_ID`` / ``QQBOT_SECRET``, on the platform the environment names."""
    settings: dict[str, Any] = {
        "app_id": os.environ["QQBOT_APP_ID"],
        "client_secret": os.environ["QQBOT_SECRET"],
        "intents": Intents.GROUP_AND_C2C_EVENT | Intents.PUBLIC_GUILD_MESSAGES,
    }
    if "QQBOT_API_BASE" in os.environ:
        settings["api_base"] = os.environ["QQBOT_API_BASE"]
    if "QQBOT_TOKEN_URL" in os.environ:
        settings["token_url"] = os.environ["QQBOT_TOKEN_URL"]
    return GatewayConfig(**{**settings, **overrides})


def ssl_context() -> ssl.SSLContext | None:
    """None (the system's trust store) unless ``QQBOT_CA_FILE`` names a CA to trust as well."""
    ca_file = os.environ.get("QQBOT_CA_FILE")
    return ssl.create_default_context(cafile=ca_file) if ca_file else None
