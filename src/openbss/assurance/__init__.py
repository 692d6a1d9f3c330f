"""Service assurance: TMF642 alarms (deduplicated, cleared by key), their ingestion from Prometheus Alertmanager
and RFC 5424 syslog, and their impact (one trouble ticket per problem on a managed object)."""
