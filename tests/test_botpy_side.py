"""The side-by-side run of plain botpy and qqproto_botpy completes and reports; a short plan, no timing asserted."""

from __future__ import annotations

import pytest

from bench.botpy_side import SMOKE_PLAN, markdown, run

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:botpy")


def test_both_sides_run_the_plan_and_the_table_reports_them() -> None:
    results = run(SMOKE_PLAN)
    plain, bridged = results["botpy 1.2.1"], results["qqproto_botpy"]
    for result in (plain, bridged):
        assert result.delivered > 0 and result.delivered + result.lost > 0
    # botpy sends msg_seq 1 with every reply, so a second reply to a message is refused as a duplicate.
    assert plain.replies_rejected > 0
    assert bridged.replies_rejected == 0
    table = markdown(results, SMOKE_PLAN).splitlines()
    assert table[0] == "| | botpy 1.2.1 | qqproto_botpy |" and len(table) == 9
