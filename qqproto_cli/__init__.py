"""The ``qqproto`` command: demo, connect, simulate and serve-fake."""
