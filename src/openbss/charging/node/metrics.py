"""Prometheus metrics of a charging node (served at ``/metrics`` by its front end)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("openbss_charging_node_requests_total", "Credit-control requests received by the node")
ANSWERS = Counter("openbss_charging_node_answers_total", "Credit-control answers by result code", ["result"])
BATCH_SIZE = Histogram("openbss_charging_node_batch_size", "Decisions per group commit",
                       buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))
COMMIT_SECONDS = Histogram("openbss_charging_node_commit_seconds", "Group-commit latency",
                           buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1.0))
OWNED_SHARDS = Gauge("openbss_charging_node_owned_shards", "Shards this node holds a valid lease on")
QUEUE_DEPTH = Gauge("openbss_charging_node_queue_depth", "Requests waiting for a decision")
ACCOUNTS = Gauge("openbss_charging_node_accounts", "Accounts held in memory")
RELOADS = Counter("openbss_charging_node_reloads_total", "Accounts reloaded from PostgreSQL", ["reason"])
ROUND_TRIPS = Counter("openbss_charging_node_round_trips_total",
                      "PostgreSQL round trips of the batches, by phase (load, commit)", ["phase"])
