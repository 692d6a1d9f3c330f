"""The charging node: credit control from memory with group commit (see docs/charging.md, "Charging nodes").

``ChargingNode`` owns shards of the charging accounts by lease (``shards.py``), keeps their balances, reservations,
sessions and answers in memory (``state.py``), decides with the same code as ``ChargingService`` and makes the
decisions of a short window durable in one fenced transaction (``engine.py``); ``server.py`` is its JSON front end
and ``/metrics``.
"""

from openbss.charging.node.engine import ChargingNode, NodeConfig

__all__ = ["ChargingNode", "NodeConfig"]
