"""``qqproto serve-fake``: the fake platform on loopback with TLS, for an adapter's own integration tests."""

from __future__ import annotations

import argparse
import ssl
import threading
from typing import Any

from qqproto.testing import PlatformConfig
from qqproto.testing.serve import LoopbackPlatform


def add_parser(commands: Any) -> None:
    """Register the subcommand."""
    parser = commands.add_parser("serve-fake", help="serve the fake QQ platform on 127.0.0.1 with TLS")
    parser.add_argument("--heartbeat-ms", type=int, default=41250, help="Hello's heartbeat_interval (default 41250)")
    parser.add_argument("--session-lifetime", type=float, default=None, help="close each socket with 4009 after N s")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the platform")
    parser.add_argument("--webhook-url", metavar="URL", help="push events to this callback URL (op 13 validation first)")
    parser.add_argument("--webhook-ca", metavar="PEM", help="trust this CA for the callback URL's certificate")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted, after printing what a client needs to reach the fake."""
    config = PlatformConfig(heartbeat_interval_ms=args.heartbeat_ms, session_lifetime=args.session_lifetime)
    with LoopbackPlatform(config=config, seed=args.seed) as loopback:
        print(f"api_base       {loopback.api_base}")
        print(f"token_url      {loopback.token_url}")
        print(f"gateway_url    {loopback.gateway_url}")
        print(f"ca_pem_path    {loopback.ca_pem_path}")
        print(f"app_id         {config.app_id}")
        print(f"client_secret  {config.client_secret}")
        if args.webhook_url:
            context = ssl.create_default_context(cafile=args.webhook_ca)
            loopback.push_to(args.webhook_url, context)
            print(f"webhook_url    {args.webhook_url} (events are pushed there, not to the gateway)")
        print("Trust ca_pem_path in your client's SSL context. Ctrl-C stops the server.", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0
