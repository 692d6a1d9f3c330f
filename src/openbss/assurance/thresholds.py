"""TMF649 performance thresholds (v5, ``/tmf-api/performanceThresholding/v5``): threshold rules on KPIs, thresholds
grouping rules, threshold jobs applying a threshold to monitored objects, and the evaluation of every measurement
stored (collected or pushed) against the active jobs.

A rule is a ``SimpleThresholdRule`` (``@type``) with ``condition: Raise``, on one KPI (``measurement``: the
performance indicator specification's id), an upper limit (``conformanceTargetUpper``, crossed when the value is
``GT`` — or ``GE`` — it) and/or a lower one (``conformanceTargetLower``, crossed when ``LT``/``LE``), a ``severity``
(critical, major, minor, warning, indeterminate) and:

* ``gracePeriods`` — the number of crossings allowed: the alarm is raised by the crossing that exceeds it;
* ``toleranceSeconds`` (extension ``OpenBSSSimpleThresholdRule``) — the window the crossings are counted in (0:
  each crossing counts alone, so with no allowed crossing the first one raises);
* ``hysteresis`` (extension) — the margin the value must come back by before the alarm clears (below
  ``upper - hysteresis``, above ``lower + hysteresis``): a value that hovers at the limit does not raise and clear
  over and over.

An ``AlgorithmThresholdRule`` (``algorithmRef``: ``urn:openbss:threshold-algorithm:expression``) evaluates an
arithmetic expression over KPIs instead of one KPI — e.g. an error ratio ``{ifInErrors} / {ifInPackets} * 100``,
KPI names in braces. Its ``algorithmParams`` (characteristics) give the ``expression`` and the same limits and
machinery as a simple rule: ``conformanceTargetUpper``/``Lower``, their comparators, ``gracePeriods``,
``toleranceSeconds``, ``hysteresis``. The expression is computed for an object and a time once every KPI it names
has a measurement of that object at that time (stored by this batch or an earlier one); a division by zero gives no
value (not a crossing).

A crossing raises a TMF642 alarm (``qualityOfServiceAlarm`` / ``thresholdCrossed``, its specific problem naming the
rule) that carries ``crossedThresholdInformation`` (the threshold, the KPI, its unit, the job's granularity, the
direction and the observed value); the value back within limits clears it. The state of each (job, rule, object) is
a row; a batch of measurements locks its states in one order, decides in memory and writes them back together, in
the measurements' transaction.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select, text

from openbss.assurance import models
from openbss.assurance.errors import InvalidThreshold, ThresholdInUse
from openbss.assurance.performance import IndicatorService, Measurement
from openbss.assurance.service import AssuranceService, Signal
from openbss.platform.db import utcnow
from openbss.platform.tmf.extensions import Extension
from openbss.platform.tmf.resource import Context, ResourceHooks, ResourceService, TmfApi, TmfResource
from openbss.platform.tmf.spec import format_datetime, load_spec

THRESHOLD_API = "performanceThresholding"
THRESHOLD_SPEC = "TMF649-Performance_Thresholding-v5.0.0.oas.yaml"
THRESHOLD_BASE = "/tmf-api/performanceThresholding/v5"
RULE_TYPE = "OpenBSSSimpleThresholdRule"
SEVERITIES = {"critical", "major", "minor", "warning", "indeterminate"}
UPPER = {"GT": lambda v, t: v > t, "GE": lambda v, t: v >= t}
LOWER = {"LT": lambda v, t: v < t, "LE": lambda v, t: v <= t}

RULE_EXTENSION_PROPERTIES: dict[str, Any] = {
    "toleranceSeconds": {"type": "integer", "minimum": 0,
                         "description": "The window (seconds) in which crossings are counted against gracePeriods"},
    "hysteresis": {"type": "number", "minimum": 0,
                   "description": "How far back within its limit the value must come before the alarm clears"},
}
RULE_EXTENSION = Extension(
    name=RULE_TYPE, base="SimpleThresholdRule", spec_file=THRESHOLD_SPEC,
    description="A simple threshold rule with its tolerance window and hysteresis (OpenBSS).",
    properties=RULE_EXTENSION_PROPERTIES)

#: the characteristic subclasses an algorithm parameter may be, with the values each holds
PARAM_TYPES: dict[str, type | tuple[type, ...]] = {
    "StringCharacteristic": str, "NumberCharacteristic": (int, float), "FloatCharacteristic": (int, float),
    "IntegerCharacteristic": int}

threshold_spec = load_spec(THRESHOLD_SPEC)
if RULE_TYPE not in threshold_spec.definitions:
    _defs: dict[str, Any] = threshold_spec.definitions
    # one resource serves both rule types: the definitions accept the algorithm rule's attributes too
    _ALGO: dict[str, Any] = {
        # the parameters are characteristics of the specification's typed subclasses (their value is the
        # subclass's; the abstract base has none)
        "algorithmParams": {"type": "array", "items": {
            "type": "object", "required": ["name", "@type", "value"],
            "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "valueType": {"type": "string"},
                           "value": {}, "@type": {"type": "string", "enum": list(PARAM_TYPES)},
                           "@baseType": {"type": "string"}, "@schemaLocation": {"type": "string"}}}},
        "algorithmRef": {"type": "string"}}
    _defs[RULE_TYPE] = {"allOf": [{"$ref": "#/components/schemas/SimpleThresholdRule"},
                                  {"type": "object", "properties": {**RULE_EXTENSION_PROPERTIES, **_ALGO}}]}
    _defs[f"{RULE_TYPE}_FVO"] = {"allOf": [{"$ref": "#/components/schemas/SimpleThresholdRule_FVO"},
                                           {"type": "object", "properties": {**RULE_EXTENSION_PROPERTIES, **_ALGO}}]}
    # the changes of a PATCH: every attribute optional (the merged result is validated as a creation)
    for _name in ("SimpleThresholdRule", "Threshold", "ThresholdJob"):
        _props, _ = threshold_spec._properties(_defs[_name])
        if _name == "SimpleThresholdRule":
            _props = {**_props, **RULE_EXTENSION_PROPERTIES, **_ALGO}
        _defs[f"{RULE_TYPE if _name == 'SimpleThresholdRule' else _name}_Patch"] = {"type": "object",
                                                                                  "properties": _props}


ALGORITHM_RULE = "AlgorithmThresholdRule"
EXPRESSION_ALGORITHM = "urn:openbss:threshold-algorithm:expression"
#: the parameters of the expression algorithm besides ``expression``: a simple rule's limits and counts
ALGORITHM_PARAMS = ("conformanceTargetUpper", "conformanceComparatorUpper", "conformanceTargetLower",
                    "conformanceComparatorLower", "gracePeriods", "toleranceSeconds", "hysteresis")
_KPI_REF = re.compile(r"\{([^{}]+)\}")
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
MAX_EXPRESSION = 500


@dataclass(frozen=True)
class Expression:
    """An arithmetic expression over KPIs (``+ - * /``, parentheses, numbers, KPI names in braces)."""

    text: str
    indicators: tuple[str, ...]
    tree: ast.expr

    @classmethod
    def parse(cls, source: Any) -> Expression:
        if not isinstance(source, str) or not source.strip() or len(source) > MAX_EXPRESSION:
            raise InvalidThreshold(f"the 'expression' parameter is an arithmetic expression over KPIs in braces "
                                   f"(e.g. '{{ifInErrors}} / {{ifInPackets}} * 100'), at most {MAX_EXPRESSION} "
                                   "characters")
        names: list[str] = []

        def slot(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name not in names:
                names.append(name)
            return f"_k{names.index(name)}"
        try:
            tree = ast.parse(_KPI_REF.sub(slot, source), mode="eval").body
        except SyntaxError as exc:
            raise InvalidThreshold(f"the 'expression' {source!r} is not an arithmetic expression") from exc
        for node in ast.walk(tree):
            ok = isinstance(node, ast.BinOp | ast.UnaryOp | ast.Name | ast.Load | ast.operator | ast.unaryop) or (
                isinstance(node, ast.Constant) and isinstance(node.value, int | float)
                and not isinstance(node.value, bool))
            if isinstance(node, ast.BinOp) and type(node.op) not in _BINARY:
                ok = False
            if isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.USub | ast.UAdd):
                ok = False
            if isinstance(node, ast.Name) and not re.fullmatch(r"_k\d+", node.id):
                ok = False
            if not ok:
                raise InvalidThreshold(f"the 'expression' {source!r} may only use numbers, KPI names in braces, "
                                       "+ - * / and parentheses")
        if not names:
            raise InvalidThreshold(f"the 'expression' {source!r} names no KPI (KPI names go in braces)")
        return cls(source.strip(), tuple(names), tree)

    def value(self, values: dict[str, Decimal]) -> Decimal | None:
        """The expression's value for the KPIs' values; None when it has none (a division by zero)."""
        def ev(node: ast.expr) -> Decimal:
            if isinstance(node, ast.Constant):
                return Decimal(str(node.value))
            if isinstance(node, ast.Name):
                return values[self.indicators[int(node.id[2:])]]
            if isinstance(node, ast.UnaryOp):
                return -ev(node.operand) if isinstance(node.op, ast.USub) else ev(node.operand)
            assert isinstance(node, ast.BinOp)
            return Decimal(_BINARY[type(node.op)](ev(node.left), ev(node.right)))
        try:
            return ev(self.tree).quantize(Decimal("0.000001"))
        except (ZeroDivisionError, InvalidOperation):
            return None


def algorithm_params(rule: dict[str, Any]) -> dict[str, Any]:
    """An algorithm rule's parameters by name."""
    return {str(p.get("name")): p.get("value") for p in rule.get("algorithmParams") or [] if isinstance(p, dict)}


def effective_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A rule as the evaluation reads it: an algorithm rule's limits and counts taken from its parameters."""
    if rule.get("@type") != ALGORITHM_RULE:
        return rule
    params = algorithm_params(rule)
    return {**rule, **{k: params[k] for k in ALGORITHM_PARAMS if params.get(k) is not None}}


def _number(doc: dict[str, Any], key: str) -> Decimal | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InvalidThreshold(f"'{key}' must be a number")
    return Decimal(str(value))


class RuleRules(ResourceHooks):
    indicators: IndicatorService

    async def before_delete(self, ctx: Context, current: dict[str, Any]) -> None:
        threshold = await ctx.session.scalar(select(models.Threshold.id).where(models.Threshold.body.contains(
            {"thresholdRule": [{"id": current["id"]}]})).limit(1))
        if threshold is not None:
            raise ThresholdInUse(f"threshold rule '{current['id']}' is used by threshold '{threshold}'")

    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        await self._check(ctx, doc)

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        await self._check(ctx, merged)

    async def _check(self, ctx: Context, doc: dict[str, Any]) -> None:
        if doc.get("@type") not in ("SimpleThresholdRule", RULE_TYPE, ALGORITHM_RULE):
            raise InvalidThreshold("the threshold rules evaluated are 'SimpleThresholdRule' and "
                                   f"'AlgorithmThresholdRule' ('@type'), not {doc.get('@type')!r}")
        if doc.get("@type") == ALGORITHM_RULE:
            await self._check_algorithm(ctx, doc)
            return
        if any(k in doc for k in ("algorithmRef", "algorithmParams")):
            raise InvalidThreshold("'algorithmRef' and 'algorithmParams' belong to an 'AlgorithmThresholdRule'")
        if doc.get("condition") != "Raise":
            raise InvalidThreshold("'condition' is 'Raise': the rule raises on a crossing and clears when the value "
                                   "is back within its limit by the hysteresis")
        severity = str(doc.get("severity", "")).lower()
        if severity not in SEVERITIES:
            raise InvalidThreshold(f"'severity' is one of {', '.join(sorted(SEVERITIES))} (any case), not "
                                   f"{doc.get('severity')!r}")
        measurement = doc.get("measurement") or {}
        known = await self.indicators.by_ids(ctx, [str(measurement.get("id") or "")])
        if not known:
            raise InvalidThreshold(f"'measurement' names a performance indicator specification by id; "
                                   f"{measurement.get('id')!r} is unknown")
        doc["measurement"] = {**measurement, "name": next(iter(known.values()))["name"]}
        upper, lower = _number(doc, "conformanceTargetUpper"), _number(doc, "conformanceTargetLower")
        if upper is None and lower is None:
            raise InvalidThreshold("a rule has an upper ('conformanceTargetUpper') or a lower "
                                   "('conformanceTargetLower') limit, or both")
        if upper is not None and doc.setdefault("conformanceComparatorUpper", "GT") not in UPPER:
            raise InvalidThreshold("'conformanceComparatorUpper' is GT or GE")
        if lower is not None and doc.setdefault("conformanceComparatorLower", "LT") not in LOWER:
            raise InvalidThreshold("'conformanceComparatorLower' is LT or LE")
        if upper is not None and lower is not None and lower >= upper:
            raise InvalidThreshold("'conformanceTargetLower' must be below 'conformanceTargetUpper'")
        hysteresis = _number(doc, "hysteresis") or Decimal(0)
        if hysteresis < 0 or (upper is not None and lower is not None and hysteresis * 2 > upper - lower):
            raise InvalidThreshold("'hysteresis' is at least 0 and at most half the gap between the limits")
        for key in ("gracePeriods", "toleranceSeconds"):
            value = doc.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidThreshold(f"'{key}' is a whole number, at least 0")
        if any(k in doc for k in RULE_EXTENSION_PROPERTIES):
            RULE_EXTENSION.mark(doc, ctx.base_url)
        else:
            doc["@type"] = "SimpleThresholdRule"
            doc.pop("@baseType", None)
            doc.pop("@schemaLocation", None)

    async def _check_algorithm(self, ctx: Context, doc: dict[str, Any]) -> None:
        """An algorithm rule: the expression algorithm, its KPIs known, its limits checked like a simple rule's."""
        if doc.get("algorithmRef") != EXPRESSION_ALGORITHM:
            raise InvalidThreshold(f"'algorithmRef' is '{EXPRESSION_ALGORITHM}' (the arithmetic expression over "
                                   f"KPIs), not {doc.get('algorithmRef')!r}")
        for key in (*RULE_EXTENSION_PROPERTIES, "conformanceTargetUpper", "conformanceTargetLower"):
            if key in doc:
                raise InvalidThreshold(f"an algorithm rule gives '{key}' as one of its 'algorithmParams'")
        params = algorithm_params(doc)
        unknown = sorted(set(params) - {"expression", *ALGORITHM_PARAMS})
        if unknown or len(params) != len(doc.get("algorithmParams") or []):
            named = f"; not {', '.join(unknown)}" if unknown else ""
            raise InvalidThreshold(f"'algorithmParams' are named once each among expression, "
                                   f"{', '.join(ALGORITHM_PARAMS)}{named}")
        expression = Expression.parse(params.get("expression"))
        known = await self.indicators.names(ctx, list(expression.indicators))
        missing = [n for n in expression.indicators if n not in known]
        if missing:
            raise InvalidThreshold(f"the 'expression' names unknown performance indicator(s): {', '.join(missing)}")
        doc.pop("measurement", None)
        plain = {k: params[k] for k in ALGORITHM_PARAMS if k in params}
        check = {**{k: v for k, v in doc.items() if k not in ("algorithmRef", "algorithmParams")}, **plain,
                 "@type": "SimpleThresholdRule",
                 "measurement": {"id": known[expression.indicators[0]]["id"]}}
        await self._check(ctx, check)  # the limits, comparators and counts as a simple rule's
        for param in doc["algorithmParams"]:
            kind = PARAM_TYPES.get(str(param.get("@type")))
            if kind is None or isinstance(param.get("value"), bool) or not isinstance(param.get("value"), kind):
                raise InvalidThreshold(f"algorithm parameter '{param['name']}' is a characteristic whose '@type' "
                                       f"({', '.join(PARAM_TYPES)}) matches its value")
        for key in ("conformanceComparatorUpper", "conformanceComparatorLower"):
            if key in check and key not in params:  # the comparators defaulted by the check are kept as parameters
                doc["algorithmParams"].append({"name": key, "@type": "StringCharacteristic", "value": check[key]})
        doc["severity"] = check["severity"]
        doc.pop("@baseType", None)
        doc.pop("@schemaLocation", None)


class ThresholdRules(ResourceHooks):
    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        await self._check(ctx, doc)

    async def before_delete(self, ctx: Context, current: dict[str, Any]) -> None:
        job = await ctx.session.scalar(select(models.ThresholdJob.id).where(models.ThresholdJob.body.contains(
            {"performanceThreshold": {"id": current["id"]}})).limit(1))
        if job is not None:
            raise ThresholdInUse(f"threshold '{current['id']}' is applied by threshold job '{job}'")

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        await self._check(ctx, merged)

    async def _check(self, ctx: Context, doc: dict[str, Any]) -> None:
        ids = [str(r.get("id")) for r in doc.get("thresholdRule") or []]
        if not ids:
            raise InvalidThreshold("'thresholdRule' names at least one threshold rule")
        table = models.ThresholdRule
        found = set((await ctx.session.execute(select(table.id).where(table.id.in_(ids)))).scalars())
        missing = [i for i in ids if i not in found]
        if missing:
            raise InvalidThreshold(f"unknown threshold rule(s): {', '.join(missing)}")


class JobRules(ResourceHooks):
    async def before_create(self, ctx: Context, doc: dict[str, Any]) -> None:
        if "executionState" in doc:
            raise InvalidThreshold("'executionState' is kept by the server")
        doc.setdefault("adminState", "UNLOCKED")
        doc["creationDate"] = doc["lastUpdate"] = format_datetime(utcnow())
        await self._check(ctx, doc)

    async def before_update(self, ctx: Context, current: dict[str, Any], changes: dict[str, Any],
                            merged: dict[str, Any]) -> None:
        if "executionState" in changes or "creationDate" in changes:
            raise InvalidThreshold("'executionState' and 'creationDate' are kept by the server")
        merged["lastUpdate"] = format_datetime(utcnow())
        await self._check(ctx, merged)

    async def _check(self, ctx: Context, doc: dict[str, Any]) -> None:
        ref = doc.get("performanceThreshold") or {}
        table = models.Threshold
        if not ref.get("id") or await ctx.session.scalar(select(table.id).where(table.id == ref["id"])) is None:
            raise InvalidThreshold(f"'performanceThreshold' names an existing threshold; {ref.get('id')!r} is not")
        criteria = doc.get("monitoredObjectsCriteria") or []
        if not criteria or not all(str(c.get("monitoredObjectFilter") or "").strip() for c in criteria):
            raise InvalidThreshold("'monitoredObjectsCriteria' gives the monitored objects: each "
                                   "'monitoredObjectFilter' is a comma-separated list of object ids, or '*' for all")
        doc["executionState"] = "Suspended" if doc.get("adminState") == "LOCKED" else "Active"


def objects_of(job: dict[str, Any]) -> set[str] | None:
    """The object ids a job watches (None: every object)."""
    out: set[str] = set()
    for c in job.get("monitoredObjectsCriteria") or []:
        for item in str(c.get("monitoredObjectFilter") or "").split(","):
            item = item.strip()
            if item == "*":
                return None
            if item:
                out.add(item)
    return out


async def object_limits(ctx: Context, object_id: str, indicator: str | None = None) -> list[dict[str, Any]]:
    """The limits watched on an object: one item per (active threshold job watching it, rule of its threshold),
    ordered by KPI, rule and job; ``indicator`` keeps one KPI's (the NOC console draws them on the KPI's chart)."""
    session = ctx.session
    jobs = [j.body for j in (await session.execute(select(models.ThresholdJob))).scalars()
            if j.body.get("executionState") == "Active"]
    jobs = [j for j in jobs if (watched := objects_of(j)) is None or object_id in watched]
    if not jobs:
        return []
    thresholds = {t.id: t.body for t in (await session.execute(select(models.Threshold).where(
        models.Threshold.id.in_([j["performanceThreshold"]["id"] for j in jobs])))).scalars()}
    rule_ids = {r["id"] for t in thresholds.values() for r in t.get("thresholdRule") or []}
    rules = {r.id: r.body for r in (await session.execute(select(models.ThresholdRule).where(
        models.ThresholdRule.id.in_(rule_ids)))).scalars()}
    out: list[dict[str, Any]] = []
    for job in jobs:
        threshold = thresholds.get(job["performanceThreshold"]["id"]) or {}
        for ref in threshold.get("thresholdRule") or []:
            rule = rules.get(ref["id"])
            if rule is None:
                continue
            rule = effective_rule(rule)
            name = rule["measurement"].get("name") if rule.get("measurement") else \
                algorithm_params(rule).get("expression")
            if indicator is not None and name != indicator:
                continue
            item: dict[str, Any] = {
                "indicator": name, "measurement": {"id": (rule.get("measurement") or {}).get("id")},
                "thresholdRule": {"id": rule["id"], "name": rule.get("name")},
                "threshold": {"id": threshold.get("id"), "name": threshold.get("name")},
                "thresholdJob": {"id": job["id"], "name": job.get("name")},
                "severity": str(rule.get("severity") or "").lower() or None,
                "gracePeriods": int(rule.get("gracePeriods") or 0),
                "toleranceSeconds": int(rule.get("toleranceSeconds") or 0),
                "hysteresis": rule.get("hysteresis", 0)}
            if rule.get("conformanceTargetUpper") is not None:
                item["upper"] = {"value": rule["conformanceTargetUpper"],
                                 "comparator": rule.get("conformanceComparatorUpper", "GT")}
            if rule.get("conformanceTargetLower") is not None:
                item["lower"] = {"value": rule["conformanceTargetLower"],
                                 "comparator": rule.get("conformanceComparatorLower", "LT")}
            out.append(item)
    out.sort(key=lambda i: (str(i["indicator"]), str(i["thresholdRule"]["name"]), i["thresholdRule"]["id"],
                            i["thresholdJob"]["id"]))
    return out


@dataclass
class _State:
    """Where a (job, rule, object) stands: its alarm raised or not, the crossings in the tolerance window."""

    raised: bool
    crossings: list[datetime]
    value: Decimal | None
    time: datetime | None


class ThresholdEngine:
    """Evaluates stored measurements against the tenant's active threshold jobs (``Collector.listeners``)."""

    def __init__(self, assurance: AssuranceService, indicators: IndicatorService) -> None:
        self.assurance = assurance
        self.indicators = indicators

    async def evaluate(self, ctx: Context, measurements: Sequence[Measurement]) -> int:
        """Evaluate ``measurements`` (in time order) in the caller's transaction; returns the alarms raised or
        cleared."""
        session = ctx.session
        jobs = (await session.execute(select(models.ThresholdJob))).scalars().all()
        active = [j.body for j in jobs if j.body.get("executionState") == "Active"]
        if not active:
            return 0
        thresholds = {t.id: t.body for t in (await session.execute(select(models.Threshold).where(
            models.Threshold.id.in_([j["performanceThreshold"]["id"] for j in active])))).scalars()}
        rule_ids = {r["id"] for t in thresholds.values() for r in t.get("thresholdRule") or []}
        rules = {r.id: r.body for r in (await session.execute(select(models.ThresholdRule).where(
            models.ThresholdRule.id.in_(rule_ids)))).scalars()}
        units = await self.indicators.names(ctx, sorted({m.indicator for m in measurements}))
        work: list[tuple[Measurement, dict[str, Any], dict[str, Any], dict[str, Any]]] = []
        #: (job id, rule id, object, time) → the algorithm rule's work, its value computed below
        computed: dict[tuple[str, str, str, datetime], tuple[dict[str, Any], dict[str, Any], dict[str, Any],
                                                             Expression]] = {}
        for m in sorted(measurements, key=lambda x: x.time):
            for job in active:
                watched = objects_of(job)
                if watched is not None and m.object_id not in watched:
                    continue
                threshold = thresholds.get(job["performanceThreshold"]["id"]) or {}
                for ref in threshold.get("thresholdRule") or []:
                    rule = rules.get(ref["id"])
                    if not rule:
                        continue
                    if rule.get("@type") == ALGORITHM_RULE:
                        expression = Expression.parse(algorithm_params(rule).get("expression"))
                        if m.indicator in expression.indicators:
                            computed[(job["id"], rule["id"], m.object_id, m.time)] = (
                                job, threshold, effective_rule(rule), expression)
                    elif rule["measurement"].get("name") == m.indicator:
                        work.append((m, job, threshold, rule))
        if computed:
            work += await self._computed(ctx, computed)
            work.sort(key=lambda w: w[0].time)
        if not work:
            return 0
        # the batch's states: made where missing, then locked, in one order (so concurrent batches queue, never
        # deadlock), evaluated in memory, written back in one statement
        keys = sorted({(job["id"], rule["id"], m.object_id) for m, job, _, rule in work})
        columns = {"j": [k[0] for k in keys], "r": [k[1] for k in keys], "o": [k[2] for k in keys]}
        await session.execute(text(
            "INSERT INTO threshold_state (job_id, rule_id, object_id) "
            "SELECT * FROM unnest(CAST(:j AS text[]), CAST(:r AS text[]), CAST(:o AS text[])) "
            "ON CONFLICT DO NOTHING"), columns)
        rows = await session.execute(text(
            "SELECT job_id, rule_id, object_id, raised, crossings, last_value, last_time FROM threshold_state "
            "WHERE (job_id, rule_id, object_id) IN "
            "(SELECT * FROM unnest(CAST(:j AS text[]), CAST(:r AS text[]), CAST(:o AS text[]))) "
            "ORDER BY job_id, rule_id, object_id FOR UPDATE"), columns)
        states = {(j, r, o): _State(bool(up), [datetime.fromisoformat(c) for c in crossed or []], value, when)
                  for j, r, o, up, crossed, value, when in rows}
        changed = 0
        for m, job, threshold, rule in work:
            changed += await self._apply(ctx, states[(job["id"], rule["id"], m.object_id)], job, threshold, rule, m,
                                         units.get(m.indicator, {}).get("indicatorUnit"))
        await session.execute(text(
            "UPDATE threshold_state t SET raised = u.raised, crossings = u.crossings, last_value = u.v, "
            "last_time = u.at FROM unnest(CAST(:j AS text[]), CAST(:r AS text[]), CAST(:o AS text[]), "
            "CAST(:raised AS boolean[]), CAST(CAST(:crossings AS text[]) AS jsonb[]), CAST(:v AS numeric[]), "
            "CAST(:at AS timestamptz[])) AS u(j, r, o, raised, crossings, v, at) "
            "WHERE t.job_id = u.j AND t.rule_id = u.r AND t.object_id = u.o"),
            {**columns, "raised": [states[k].raised for k in keys],
             "crossings": ["[" + ",".join(f'"{c.isoformat()}"' for c in states[k].crossings) + "]" for k in keys],
             "v": [states[k].value for k in keys], "at": [states[k].time for k in keys]})
        return changed

    @staticmethod
    async def _computed(ctx: Context, computed: dict[tuple[str, str, str, datetime], tuple[
            dict[str, Any], dict[str, Any], dict[str, Any], Expression]]) -> list[tuple[
            Measurement, dict[str, Any], dict[str, Any], dict[str, Any]]]:
        """The algorithm rules' values: for each (object, time), the stored measurements of the KPIs the
        expression names (this batch's are stored already), read in one query; an expression still missing a KPI
        waits for it (the batch that brings it computes the value)."""
        wanted = sorted({(o, t, name) for (_, _, o, t), (_, _, _, e) in computed.items() for name in e.indicators})
        rows = await ctx.session.execute(text(
            "SELECT s.object_id, s.observed_at, s.indicator, s.value FROM kpi_sample s JOIN unnest("
            "CAST(:o AS text[]), CAST(:t AS timestamptz[]), CAST(:i AS text[])) AS w(o, t, i) "
            "ON s.object_id = w.o AND s.observed_at = w.t AND s.indicator = w.i"),
            {"o": [w[0] for w in wanted], "t": [w[1] for w in wanted], "i": [w[2] for w in wanted]})
        values: dict[tuple[str, datetime], dict[str, Decimal]] = {}
        for object_id, observed, indicator, value in rows:
            values.setdefault((object_id, observed), {})[indicator] = Decimal(value)
        out = []
        for (_, _, object_id, time), (job, threshold, rule, expression) in computed.items():
            known = next((v for (o, t), v in values.items() if o == object_id and t == time), {})
            if any(name not in known for name in expression.indicators):
                continue
            value = expression.value(known)
            if value is not None:
                out.append((Measurement(object_id, expression.text, time, value), job, threshold, rule))
        return out

    async def _apply(self, ctx: Context, state: _State, job: dict[str, Any], threshold: dict[str, Any],
                     rule: dict[str, Any], m: Measurement, unit: str | None) -> int:
        """One measurement against one rule: count a crossing, raise past the allowed crossings of the window,
        clear once back within the limit by the hysteresis (``state`` is changed in place)."""
        if rule.get("@type") == ALGORITHM_RULE and state.time is not None and m.time <= state.time:
            return 0  # an expression's instant is evaluated once (its KPIs may arrive in several batches)
        upper, lower = _number(rule, "conformanceTargetUpper"), _number(rule, "conformanceTargetLower")
        hysteresis = _number(rule, "hysteresis") or Decimal(0)
        v = m.value
        up = upper is not None and UPPER[rule.get("conformanceComparatorUpper", "GT")](v, upper)
        down = lower is not None and LOWER[rule.get("conformanceComparatorLower", "LT")](v, lower)
        within = (upper is None or v <= upper - hysteresis) and (lower is None or v >= lower + hysteresis)
        state.value, state.time = v, m.time
        if up or down:
            window = timedelta(seconds=int(rule.get("toleranceSeconds") or 0))
            state.crossings = [c for c in state.crossings if c > m.time - window] + [m.time]
            if not state.raised and len(state.crossings) > int(rule.get("gracePeriods") or 0):
                alarm = self._alarm(job, threshold, rule, m, unit, "up" if up else "down", upper if up else lower)
                await self.assurance.apply(ctx, [Signal("raise", alarm, "threshold")])
                state.raised = True
                return 1
        elif state.raised and within:
            alarm = self._alarm(job, threshold, rule, m, unit, "", None)
            alarm["alarmClearedTime"] = format_datetime(m.time)
            await self.assurance.apply(ctx, [Signal("clear", alarm, "threshold")])
            state.raised, state.crossings = False, []
            return 1
        return 0

    @staticmethod
    def _alarm(job: dict[str, Any], threshold: dict[str, Any], rule: dict[str, Any], m: Measurement,
               unit: str | None, direction: str, limit: Decimal | None) -> dict[str, Any]:
        alarm: dict[str, Any] = {
            "alarmType": "qualityOfServiceAlarm", "perceivedSeverity": str(rule["severity"]).lower(),
            "probableCause": "thresholdCrossed", "specificProblem": f"threshold {rule.get('name') or rule['id']}",
            "alarmedObject": {"id": m.object_id}, "sourceSystemId": "openbss-performance", "state": "raised",
            "alarmRaisedTime": format_datetime(m.time),
        }
        if direction:
            word = "above" if direction == "up" else "below"
            info: dict[str, Any] = {
                "threshold": {"id": threshold.get("id", ""), "name": threshold.get("name", "")},
                "indicatorName": m.indicator, "observedValue": str(m.value), "direction": direction,
                "granularity": str(job.get("granularity", "")),
                "thresholdCrossingDescription": f"{m.indicator} {m.value} is {word} {limit} (rule "
                                                f"{rule.get('name') or rule['id']}, job {job['id']})"}
            if unit:
                info["indicatorUnit"] = unit
            alarm["crossedThresholdInformation"] = info
            alarm["alarmDetails"] = info["thresholdCrossingDescription"]
        return alarm


def threshold_api(rule_hooks: ResourceHooks, threshold_hooks: ResourceHooks, job_hooks: ResourceHooks) -> TmfApi:
    rule = TmfResource(path="thresholdRule", type="ThresholdRule", table=models.ThresholdRule, hooks=rule_hooks,
                       create_definition=f"{RULE_TYPE}_FVO", update_definition=f"{RULE_TYPE}_Patch",
                       read_definition=RULE_TYPE, customer_operations=frozenset())
    threshold = TmfResource(path="threshold", type="Threshold", table=models.Threshold, hooks=threshold_hooks,
                            create_definition="Threshold_FVO", update_definition="Threshold_Patch",
                            read_definition="Threshold", customer_operations=frozenset())
    job = TmfResource(path="thresholdJob", type="ThresholdJob", table=models.ThresholdJob, hooks=job_hooks,
                      create_definition="ThresholdJob_FVO", update_definition="ThresholdJob_Patch",
                      read_definition="ThresholdJob", customer_operations=frozenset())
    return TmfApi(name=THRESHOLD_API, title="TMF649 Performance Thresholding", spec_file=THRESHOLD_SPEC,
                  permission="assurance", resources=[rule, threshold, job], base_path=THRESHOLD_BASE,
                  extensions=[RULE_EXTENSION])


def threshold_services(api: TmfApi, indicators: IndicatorService) -> dict[str, ResourceService]:
    for r in api.resources:
        if isinstance(r.hooks, RuleRules):
            r.hooks.indicators = indicators
    return {r.path: ResourceService(api, r) for r in api.resources}


__all__ = ["JobRules", "RuleRules", "ThresholdEngine", "ThresholdRules", "threshold_api", "threshold_services"]
