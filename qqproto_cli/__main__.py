"""Entry point of the ``qqproto`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import connect, demo, serve_fake, simulate


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run one subcommand; the return value is the exit status."""
    parser = argparse.ArgumentParser(prog="qqproto", description="Keep a QQ bot connected to its gateway.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (demo, connect, simulate, serve_fake):
        module.add_parser(commands)
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
