"""Plain-text tables for the command's summaries."""

from __future__ import annotations

from collections.abc import Sequence


def render(rows: Sequence[tuple[str, object]], title: str = "") -> str:
    """Two aligned columns, a label and a value per row."""
    width = max((len(label) for label, _ in rows), default=0)
    lines = [title, "-" * max(len(title), width + 12)] if title else []
    lines += [f"{label:<{width}}  {_format(value)}" for label, value in rows]
    return "\n".join(lines)


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_format(v)}" for k, v in value.items()) or "none"
    return "none" if value is None else str(value)
