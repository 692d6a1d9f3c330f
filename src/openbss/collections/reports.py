"""Collections reports (``GET /api/collections/v1/report/{name}``, ``openbss collections report``), each one SQL
query over the episodes and step executions of the bound tenant:

* ``inCollection`` — open episodes by next step and segment (count, overdue amount per currency);
* ``recoveredByStep`` — what was recovered (peak overdue less overdue now) of the episodes by the last step taken
  (closed episodes included);
* ``cureRate`` — episodes opened since ``start``: how many closed paid (cured), written off, still open;
* ``brokenPromises`` — promises to pay by state;
* ``suspensionsPerDay`` — suspensions (restrict, suspend) and resumptions (episodes closed paid after one) per day.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

QUERIES: dict[str, str] = {
    "inCollection": """
        SELECT e.next_step AS "nextStep", COALESCE(v.steps -> e.next_step ->> 'name',
               v.steps -> e.next_step ->> 'action', 'done') AS "stepName", COALESCE(e.segment, '') AS segment,
               e.currency, count(*) AS accounts, sum(e.overdue_amount) AS overdue
        FROM collections_episode e
        JOIN collections_policy_version v ON v.policy_id = e.policy_id AND v.version = e.policy_version
        WHERE e.state = 'open'
        GROUP BY 1, 2, 3, 4 ORDER BY 1, 3, 4""",
    "recoveredByStep": """
        SELECT COALESCE(last.action, 'none') AS "lastAction", e.currency, count(*) AS episodes,
               sum(e.peak_amount - CASE WHEN e.state = 'closed' AND e.close_reason = 'paid' THEN 0
                                        ELSE e.overdue_amount END) AS recovered
        FROM collections_episode e
        LEFT JOIN LATERAL (SELECT s.action FROM collections_step_execution s
                           WHERE s.episode_id = e.id AND s.state = 'done' ORDER BY s.step DESC LIMIT 1) last ON true
        WHERE e.opened_at::date >= :start
        GROUP BY 1, 2 ORDER BY 1, 2""",
    "cureRate": """
        SELECT count(*) AS opened,
               count(*) FILTER (WHERE close_reason = 'paid') AS cured,
               count(*) FILTER (WHERE close_reason = 'writtenOff') AS "writtenOff",
               count(*) FILTER (WHERE state = 'open') AS "stillOpen",
               round(count(*) FILTER (WHERE close_reason = 'paid')::numeric / NULLIF(count(*), 0), 4) AS "cureRate"
        FROM collections_episode WHERE opened_at::date >= :start""",
    "brokenPromises": """
        SELECT state, count(*) AS promises, sum(amount) AS amount
        FROM collections_promise WHERE created_at::date >= :start GROUP BY 1 ORDER BY 1""",
    "suspensionsPerDay": """
        SELECT day, sum(suspensions) AS suspensions, sum(resumptions) AS resumptions FROM (
            SELECT s.finished_at::date AS day, count(*) AS suspensions, 0 AS resumptions
            FROM collections_step_execution s
            WHERE s.state = 'done' AND s.action IN ('restrict', 'suspend')
              AND jsonb_array_length(COALESCE(s.outcome -> 'product', '[]'::jsonb)) > 0
            GROUP BY 1
            UNION ALL
            SELECT e.closed_at::date, 0, count(*) FROM collections_episode e
            WHERE e.close_reason = 'paid' AND e.body ? 'resumeOrder' GROUP BY 1
        ) t WHERE day >= :start GROUP BY day ORDER BY day""",
}
REPORTS = tuple(QUERIES)


async def report(session: AsyncSession, name: str, start: date) -> list[dict[str, Any]]:
    rows = (await session.execute(text(QUERIES[name]), {"start": start})).mappings().all()
    return [{k: (v.isoformat() if isinstance(v, date) else v) for k, v in r.items()} for r in rows]


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()
