"""Thin drivers that run a QQGatewayConnection over real sockets: asyncio, trio and a thread."""
