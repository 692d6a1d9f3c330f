"""Decomposition of a product order item into a service order and its steps.

The catalog says what a product is made of (``product_catalog.decomposition``: customer-facing services, the
resource-facing services they rely on, the resources each needs). Here this becomes work: allocate each resource
from its pool, provision each resource-facing service on its network element (HSS, PCRF, AAA) once its resources are
there, open the charging account (OCS) of a mobile line, then record the subscription in the inventory.

A step's parameters may name another step's result: ``"$sim.imsi"`` is the ``imsi`` of the SIM card allocated by
the step ``allocate:sim``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: resource specification name keywords -> pool kind
RESOURCE_KINDS = (("msisdn", "msisdn"), ("number", "msisdn"), ("sim", "sim"), ("ont", "ont"), ("onu", "ont"),
                  ("ipv4", "ipv4"), ("ip address", "ipv4"))
#: resource-facing service name keywords -> network element
SERVICE_ELEMENTS = (("hss", "hss"), ("hlr", "hss"), ("udm", "hss"), ("pcrf", "pcrf"), ("pcf", "pcrf"),
                    ("policy", "pcrf"), ("aaa", "aaa"), ("radius", "aaa"), ("broadband profile", "aaa"))
NOUN = {"hss": "Subscriber", "pcrf": "Policy", "aaa": "Profile", "ocs": "Account"}
#: the elements that bar services of a line (operator-determined barring on the HSS, the OCS refusing to charge)
BARRING_ELEMENTS = ("hss", "ocs")
#: how a terminated product gives its resources back
RELEASE_MODE = {"msisdn": "quarantine", "ipv4": "quarantine", "sim": "retire", "ont": "free"}


def _match(name: str, table: tuple[tuple[str, str], ...]) -> str | None:
    low = name.lower()
    for word, value in table:
        if word in low.split() or word in low:
            return value
    return None


def resource_kind(name: str) -> str | None:
    return _match(name, RESOURCE_KINDS)


def element_of(name: str) -> str | None:
    return _match(name, SERVICE_ELEMENTS)


@dataclass
class PlannedStep:
    name: str
    adapter: str  # hss | pcrf | aaa | ocs | pool | inventory
    operation: str
    params: dict[str, Any] = field(default_factory=dict)
    depends_on: list[str] = field(default_factory=list)  # step names


@dataclass
class Plan:
    steps: list[PlannedStep]
    services: list[dict[str, Any]]  # service order items: {"name", "serviceSpecification", "element", "dependsOn"}
    elements: list[str]
    kinds: list[str]


def _walk(nodes: list[dict[str, Any]], parent: str | None, out: list[dict[str, Any]]) -> None:
    for n in nodes:
        out.append({"node": n, "parent": parent})
        _walk(n.get("serviceSpecification") or [], n.get("name"), out)


def payment_type(offering: dict[str, Any]) -> str:
    """Prepaid when the offering says so (its name or a category named Prepaid), else postpaid."""
    names = [str(offering.get("name", ""))] + [str(c.get("name", "")) for c in offering.get("category") or []]
    return "prepaid" if any("prepaid" in n.lower() for n in names) else "postpaid"


def truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1", "yes")


def plan_activation(decomposition: dict[str, Any], characteristics: dict[str, Any], offering: dict[str, Any],
                    billing_account_id: str | None, product_prices: list[dict[str, Any]] | None = None) -> Plan:
    flat: list[dict[str, Any]] = []
    _walk(decomposition.get("serviceSpecification") or [], None, flat)
    kinds: list[str] = []

    def add_kinds(refs: list[dict[str, Any]]) -> None:
        for r in refs:
            kind = resource_kind(str(r.get("name", "")))
            if kind and kind not in kinds:
                kinds.append(kind)

    add_kinds(decomposition.get("resourceSpecification") or [])
    for entry in flat:
        add_kinds(entry["node"].get("resourceSpecification") or [])
    if "ipv4" in kinds and "staticIp" in characteristics and not truthy(characteristics["staticIp"]):
        kinds.remove("ipv4")
    if "ipv4" in kinds and "staticIp" not in characteristics:
        kinds.remove("ipv4")  # a static address only when the customer chose one

    steps = [PlannedStep(f"allocate:{k}", "pool", "allocate", {"kind": k}) for k in kinds]
    alloc = [s.name for s in steps]
    services: list[dict[str, Any]] = []
    elements: list[str] = []
    element_step: dict[str, str] = {}
    for entry in flat:
        node = entry["node"]
        element = element_of(str(node.get("name", "")))
        services.append({"name": node.get("name"), "spec": {k: node[k] for k in ("id", "href", "name") if k in node},
                         "element": element, "parent": entry["parent"]})
        if element is None or element in elements:
            continue
        # an element is provisioned for a subscriber identity: a SIM (HSS), a number (PCRF), an ONT (AAA)
        if {"hss": "sim", "pcrf": "msisdn", "aaa": "ont"}[element] not in kinds:
            continue
        elements.append(element)
        params: dict[str, Any]
        deps = list(alloc)
        if element == "hss":
            params = {"imsi": "$sim.imsi", "msisdn": "$msisdn.value", "iccid": "$sim.iccid", "kiRef": "$sim.kiRef",
                      "services": ["voice", "sms", "data"]}
        elif element == "pcrf":
            params = {"msisdn": "$msisdn.value", "imsi": "$sim.imsi", "qosProfile": offering.get("name")}
            if "hss" in element_step:
                deps = [element_step["hss"]]
        else:  # aaa
            params = {"ontSerialNumber": "$ont.value", "ipAddress": "$ipv4.value",
                      "downloadSpeed": characteristics.get("downloadSpeed"), "profile": offering.get("name")}
        name = f"{element}:create{NOUN[element]}"
        steps.append(PlannedStep(name, element, f"create{NOUN[element]}", params, deps))
        element_step[element] = name
    if "msisdn" in kinds:
        elements.append("ocs")
        ocs: dict[str, Any] = {"msisdn": "$msisdn.value", "imsi": "$sim.imsi", "offering": offering.get("id"),
                               "billingAccount": billing_account_id, "paymentType": payment_type(offering)}
        recurring = [p for p in product_prices or [] if isinstance(p, dict) and p.get("priceType") == "recurring"]
        if recurring:  # a prepaid line's fees as sold (quantity, discounts), not the catalog's list prices
            ocs["productPrice"] = recurring
        steps.append(PlannedStep("ocs:createAccount", "ocs", "createAccount", ocs, ["allocate:msisdn"]))
    steps.append(PlannedStep("inventory:activate", "inventory", "activate", {},
                             [s.name for s in steps]))
    return Plan(steps, services, elements, kinds)


def plan_change(kind: str, context: dict[str, Any], changes: dict[str, Any]) -> list[PlannedStep]:
    """Steps of a modify (suspend, resume, change) or delete (terminate) on a live product, from what its
    activation recorded (``context``: elements, subscribers, allocations)."""
    elements: list[str] = list(context.get("elements") or [])
    subs: dict[str, str] = context.get("subscribers") or {}
    steps: list[PlannedStep] = []

    def ident(e: str) -> dict[str, Any]:
        from openbss.provisioning.adapters import SUBSCRIBER_PARAM

        return {SUBSCRIBER_PARAM[e]: subs.get(e)}

    barring = changes.get("barring")  # a partial bar placed, or lifted ([]): on the HSS and the OCS
    if kind in ("suspend", "resume"):
        for e in elements:
            steps.append(PlannedStep(f"{e}:{kind}{NOUN[e]}", e, f"{kind}{NOUN[e]}", ident(e)))
        status: dict[str, Any] = {"status": "suspended" if kind == "suspend" else "active"}
        if kind == "resume" and barring is not None:  # resumed and its bar lifted by the same item
            resumed = [s.name for s in steps]
            for e in elements:
                if e in BARRING_ELEMENTS:
                    steps.append(PlannedStep(f"{e}:update{NOUN[e]}", e, f"update{NOUN[e]}",
                                             ident(e) | {"barring": barring}, resumed))
            status["changes"] = changes.get("product", {})
        # the inventory step is the item's last (it completes the item)
        steps.append(PlannedStep("inventory:status", "inventory", "status", status, [s.name for s in steps]))
    elif kind == "change":
        update = {"pcrf": {"qosProfile": changes.get("offeringName")},
                  "ocs": {"offering": changes.get("offeringId"), "barring": barring,
                          # a transfer: the line's usage is billed to the account it moved to
                          "billingAccount": ((changes.get("product") or {}).get("billingAccount") or {}).get("id")},
                  "hss": {"barring": barring},
                  "aaa": {"downloadSpeed": (changes.get("characteristics") or {}).get("downloadSpeed")}}
        for e in elements:
            params = {k: v for k, v in update.get(e, {}).items() if v is not None}
            if params:
                steps.append(PlannedStep(f"{e}:update{NOUN[e]}", e, f"update{NOUN[e]}", ident(e) | params))
        steps.append(PlannedStep("inventory:change", "inventory", "change", {"changes": changes.get("product", {})},
                                 [s.name for s in steps]))
    elif kind == "terminate":
        for e in reversed(elements):
            steps.append(PlannedStep(f"{e}:delete{NOUN[e]}", e, f"delete{NOUN[e]}", ident(e)))
        network = [s.name for s in steps]
        for a in context.get("allocations") or []:
            steps.append(PlannedStep(f"release:{a['kind']}", "pool", "release",
                                     {"key": a["key"], "mode": RELEASE_MODE.get(a["kind"], "free")}, network))
        steps.append(PlannedStep("inventory:status", "inventory", "status", {"status": "terminated"},
                                 [s.name for s in steps]))
    else:
        raise ValueError(kind)
    return steps


def undo_of(step_adapter: str, operation: str, request: dict[str, Any],
            response: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]] | None:
    """The compensating operation of a done step (None when it has none).

    A create is undone by a delete, an allocation by a release. A modify step is undone by restoring what the
    element had before the call, from its answer's ``previous`` (``{"status", "profile"}``): a suspend or resume
    by the reverse verb unless the element was already in that state, an update by an update back to the previous
    values of what it changed. Without ``previous`` (an adapter that does not say), a suspend is undone by a resume
    and a resume by a suspend; an update cannot be undone."""
    if step_adapter == "pool":
        return ("release", {"key": request.get("key"), "mode": "free"}) if operation == "allocate" else None
    if step_adapter not in NOUN:
        return None
    from openbss.provisioning.adapters import SUBSCRIBER_PARAM, verb_of

    verb = verb_of(operation)
    noun = NOUN[step_adapter]
    previous = (response or {}).get("previous")
    ident = SUBSCRIBER_PARAM[step_adapter]
    if verb == "create":
        return f"delete{noun}", request
    if verb in ("suspend", "resume"):
        after = "suspended" if verb == "suspend" else "active"
        if isinstance(previous, dict) and previous.get("status") == after:
            return None  # the element was already so: nothing changed
        return ("resume" if verb == "suspend" else "suspend") + noun, request
    if verb == "update":
        if not isinstance(previous, dict) or not isinstance(previous.get("profile"), dict):
            return None
        before = previous["profile"]
        changed = [k for k in request if k != ident]
        restore = {k: before.get(k) for k in changed if k in before}
        if not restore:
            return None
        return f"update{noun}", {ident: request.get(ident), **restore}
    return None
