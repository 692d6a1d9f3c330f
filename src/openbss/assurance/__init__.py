"""Service assurance: TMF642 alarms (deduplicated, cleared by key), their ingestion from Prometheus Alertmanager,
RFC 5424 syslog and SNMP traps, their correlation on the inventory's topology by the tenant's rules, and TMF656
service problems (one trouble ticket each, their impact on customers and products)."""
