"""Process settings. Every value comes from an ``OPENBSS_*`` environment variable."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: the built-in development secrets: a process outside demo mode refuses to start with them (``check_secrets``)
DEV_HUB_SECRET = "openbss-dev-hub-secret"  # noqa: S105 - a known value, refused outside demo mode
DEV_MESSAGING_SECRET = "openbss-dev-messaging-secret"  # noqa: S105 - a known value, refused outside demo mode
DEV_SANDBOX_SECRET = "openbss-dev-sandbox-secret"  # noqa: S105 - a known value, refused outside demo mode
#: the SEPA creditor the settings default to: the standard example IBAN (and its bank's BIC), for demo mode only
#: (``payments.bank.sepa_creditor`` refuses it outside)
DEV_SEPA_CREDITOR_IBAN, DEV_SEPA_CREDITOR_BIC = "DE89370400440532013000", "COBADEFFXXX"
MIN_SECRET_LENGTH = 16


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPENBSS_", extra="ignore")

    #: demo mode (``openbss demo``, the test suite): the built-in development secrets and keys generated under
    #: ``data_dir/keys`` are accepted. Outside demo mode the API and the worker refuse to start without the
    #: operator's own (``platform/startup.py``: ``OPENBSS_HUB_SECRET``, ``OPENBSS_MESSAGING_WEBHOOK_SECRET``,
    #: ``OPENBSS_JWT_PRIVATE_KEY``, ``OPENBSS_MASTER_KEYS``/``OPENBSS_MASTER_KEY``).
    demo_mode: bool = False

    # PostgreSQL. ``database_url`` is the owner/migration connection; the API and workers connect as
    # ``app_database_url`` (a role that is neither superuser nor BYPASSRLS). When ``app_database_url`` is unset
    # it is derived from ``database_url`` with the user replaced by ``db_app_role``.
    # When ``database_url`` is unset, an embedded PostgreSQL is started under ``data_dir``.
    database_url: str | None = None
    app_database_url: str | None = None
    db_app_role: str = "openbss_app"
    db_pool_size: int = 10
    db_max_overflow: int = 10
    data_dir: Path = Path("var")

    # NATS JetStream event backbone. Unset: events are dispatched in-process from the outbox.
    nats_url: str | None = None
    nats_stream: str = "OPENBSS"
    nats_ack_wait_seconds: float = 30.0

    # Time-partitioned tables (platform/partitions.py: rated usage, by month of its event time). ``openbss db
    # partitions`` (as the database owner) creates the partitions of the current month and of
    # ``usage_partitions_ahead`` months ahead and drops monthly partitions older than ``usage_retention_months``
    # months before the current one (0: keep everything; never fewer than 2). One setting for the installation:
    # a partition holds every tenant's usage.
    usage_partitions_ahead: int = 3
    usage_retention_months: int = 0

    # Batch rating's work queue (rating/queue.py, with ``nats_url``): a submitted usage file is cut into chunks of at
    # most ``rating_chunk_records`` records, in ``rating_partitions`` partitions by subscriber; every ``openbss
    # worker`` rates chunks, one chunk of a partition at a time; a chunk not acknowledged within
    # ``rating_ack_wait_seconds`` (its worker died) is delivered again.
    rating_partitions: int = 8
    rating_chunk_records: int = 5000
    rating_ack_wait_seconds: float = 120.0
    # Every ``rating_republish_interval_seconds`` each worker publishes again the chunks still queued of files
    # registered more than ``rating_republish_after_seconds`` ago (a publication that failed after the commit;
    # the broker drops a copy within its duplicate window, and a chunk rated already changes nothing).
    rating_republish_after_seconds: float = 60.0
    rating_republish_interval_seconds: float = 30.0

    # HTTP
    public_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1_048_576
    #: slow clients (platform/connections.py): a request's headers must arrive within the first, its body within
    #: the second after them; open connections per client address (0: no cap; behind a load balancer, raise it)
    http_header_timeout_seconds: float = 10.0
    http_body_timeout_seconds: float = 60.0
    http_max_connections_per_client: int = 100

    # Authentication. ``jwks_url`` makes any OIDC provider work; otherwise tokens are verified with the local
    # signing key (created under ``data_dir`` on first use, or given in ``jwt_private_key``/``jwt_public_key`` PEM).
    jwks_url: str | None = None
    jwt_issuer: str = "openbss-local"
    jwt_audience: str = "openbss"
    jwt_private_key: str | None = None
    jwt_public_key: str | None = None
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256", "EdDSA"])
    tenant_claim: str = "tenant"
    roles_claim: str = "roles"
    party_claim: str = "party_id"

    # Notification hubs
    hub_secret: str = DEV_HUB_SECRET  # demo mode only: refused at start-up otherwise
    hub_max_attempts: int = 8
    hub_timeout_seconds: float = 5.0
    #: networks (CIDR, comma-separated) whose addresses callbacks may use although they are not public
    #: (loopback, private, link-local...): for subscribers on the operator's private networks. Empty: none.
    hub_callback_allow: str = ""

    # Events
    #: the largest event (its serialized envelope) a change may emit: a change whose event would be larger is
    #: refused (413), so that every accepted change can be published. Keep it at most the broker's max_payload
    #: minus 4 KiB (the message's wrapper and headers); NATS's default max_payload is 1 MiB.
    event_max_bytes: int = 1_044_480
    relay_batch_size: int = 200
    relay_poll_seconds: float = 0.2
    outbox_retention_days: int = 7
    #: reactions (event consumers): attempts of one consumer on one event before it is dead-lettered (a
    #: consumer may set its own), and the exponential backoff between attempts: base * 2^(attempt-1), capped
    event_max_attempts: int = Field(default=10, ge=1, le=1000)
    event_retry_base_seconds: float = Field(default=1.0, gt=0)
    event_retry_max_seconds: float = Field(default=600.0, gt=0)

    # Personal data at rest (platform/crypto.py). Master keys wrap each tenant's data keys. Either one key
    # (``master_key``: 32 bytes, base64) or a keyring (``master_keys``: "id:base64,id:base64", the first one wraps,
    # the others still unwrap during a rotation). Unset: a key generated under ``data_dir/keys`` (development).
    master_key: str | None = None
    master_keys: str | None = None
    # Extra attributes (top-level or dotted) treated as personal data, per resource type, on top of the built-in
    # ones: '{"Individual": ["nationality"], "Customer": ["characteristic"]}'.
    pii_attributes: dict[str, list[str]] = Field(default_factory=dict)

    # Accounts: defaults of a billing account created without them
    default_currency: str = "EUR"
    default_payment_terms_days: int = 30

    # Order to activate (ordering, provisioning, inventory)
    #: customer segment (TMF629 characteristic "segment") -> catalog marketSegment id
    ordering_segment_map: dict[str, str] = Field(default_factory=lambda: {
        "residential": "consumer", "sme": "smb", "corporate": "enterprise"})
    #: attempts of one network step before it fails for good (then the order item is compensated)
    provisioning_step_attempts: int = 4
    provisioning_step_backoff_seconds: float = 1.0
    provisioning_step_timeout_seconds: float = 10.0
    #: a claimed step's lease outlives its timeout by this much; then a dead worker's step is claimed again
    provisioning_lease_grace_seconds: float = 5.0
    #: customer care: how often the escalation scheduler looks for due SLA steps, and how many it fires per
    #: transaction
    care_escalation_interval_seconds: float = 5.0
    care_escalation_batch: int = 50
    # Service assurance: the RFC 5424 syslog UDP listener a worker (and the demo) runs; no port, no listener.
    # Its alarms go to one tenant. Datagrams are applied in batches, one transaction each.
    assurance_syslog_port: int | None = None
    assurance_syslog_host: str = "127.0.0.1"
    assurance_syslog_tenant: str = "demo"
    assurance_syslog_batch: int = 500
    # The SNMP trap listener (v2c communities; v3 users as JSON: [{"name", "engineId", "authKey", "privKey",
    # "authProtocol": "SHA", "privProtocol": "AES"}]); no port, no listener. Its alarms go to the syslog tenant.
    assurance_snmp_port: int | None = None
    assurance_snmp_communities: list[str] = ["public"]
    assurance_snmp_v3_users: list[dict[str, str]] = []
    # Flapping: a problem raised (and cleared) more than this many times within the window is marked flapping and
    # its notifications are damped.
    assurance_flap_threshold: int = 5
    assurance_flap_window_seconds: int = 600
    # Performance management (TMF628): how often a worker looks for due collection jobs (and rolls KPIs up and
    # applies their retention), and how long each level of KPI is kept (days): the samples (whole day partitions),
    # the 5-minute, hourly and daily rollups.
    assurance_collection_interval_seconds: float = 10.0
    assurance_kpi_raw_days: int = 7
    assurance_kpi_5min_days: int = 35
    assurance_kpi_hour_days: int = 400
    assurance_kpi_day_days: int = 1830
    #: where ticket attachments are stored (a directory or s3://bucket/prefix; default data_dir/care-attachments)
    care_attachment_url: str | None = None
    #: an attachment's size at most (its base64 in a request is also bounded by OPENBSS_MAX_BODY_BYTES)
    care_attachment_max_bytes: int = 512 * 1024
    #: released MSISDNs and IPv4 addresses wait this long before they can be allocated again
    msisdn_quarantine_days: float = 90.0
    ip_quarantine_days: float = 1.0
    #: default fault injection of the network simulators, per element (hss, pcrf, aaa, ocs):
    #: '{"hss": {"latencyMs": 0, "errorRate": 0.0, "rejectImsi": []}}'; a tenant overrides it via the API
    simulator_faults: dict[str, dict[str, object]] = Field(default_factory=dict)
    #: the OCS behind activation: "charging" (the charging domain's accounts: a completed order opens the line's
    #: charging account, the default) or "simulator" (the built-in network simulator, for tests of the simulator)
    provisioning_ocs: str = "charging"
    #: charging nodes (``openbss charging-node``): the number of shards of the charging accounts (the same on every
    #: node and never changed while nodes run), how long a shard's lease runs without renewal, the requests a node
    #: queues before it answers 3004 (too busy), the most requests one group commit carries, and where it listens
    charging_shards: int = 64
    charging_node_lease_seconds: float = 10.0
    charging_node_max_queue: int = 5000
    charging_node_batch_max: int = 500
    charging_node_host: str = "127.0.0.1"
    charging_node_port: int = 8086
    #: how long a process keeps a tenant's simulator fault settings before reading them again
    simulator_config_cache_seconds: float = 1.0

    # Agent console (/console/): staff sign-in through the operator's OpenID provider (authorization code + PKCE,
    # confidential client). '{"issuer": "https://idp.example", "clientId": "...", "clientSecret": "...",
    # "label": "Corporate sign-in"}'; its ID tokens carry the tenant and roles (``tenant_claim``, ``roles_claim``).
    # Unset: the console takes pasted bearer tokens only (always possible).
    care_console_identity_provider: dict[str, str] | None = None
    #: lifetime of the OpenBSS token the console hands an agent signed in through the provider
    care_console_token_minutes: int = 60
    # Diameter Gy/Ro front end of online charging (``openbss diameter``; docs/charging.md "Diameter front end")
    diameter_host: str = "127.0.0.1"
    diameter_port: int = 3868
    #: the front end's own Origin-Host / Origin-Realm (DiameterIdentity) in every answer and CEA
    diameter_origin_host: str = "ocs.openbss.local"
    diameter_origin_realm: str = "openbss.local"
    #: which tenant a peer charges into: its Origin-Host, else its Origin-Realm, mapped to a tenant id:
    #: '{"pgw1.operator.example": "t-1", "ims.operator.example": "t-2"}'; an unmapped peer gets
    #: ``diameter_default_tenant``, and without one is refused at the capabilities exchange (3010 UNKNOWN_PEER)
    diameter_peer_tenants: dict[str, str] = Field(default_factory=dict)
    diameter_default_tenant: str | None = None
    #: credit-control requests decided at once, per peer connection and for the whole front end; one more is
    #: answered at once with 3004 DIAMETER_TOO_BUSY (the peer retries elsewhere) instead of queueing
    diameter_max_in_flight_per_peer: int = 256
    diameter_max_in_flight: int = 2048
    #: Tw (RFC 3539): a DWR after this long without traffic from a peer; no answer within another Tw closes it
    diameter_watchdog_seconds: float = 30.0
    #: Diameter over TLS (RFC 6733): PEM files of the front end's certificate chain and private key (both or neither)
    diameter_tls_cert: str | None = None
    diameter_tls_key: str | None = None

    # Self-care portal (/selfcare/). The portal serves one tenant.
    selfcare_tenant: str = "demo"
    #: OpenID Connect providers customers sign in with: '[{"id": "google", "label": "Google",
    #: "issuer": "https://accounts.google.com", "clientId": "...", "clientSecret": "..."}]'
    selfcare_identity_providers: list[dict[str, str]] = Field(default_factory=list)
    #: the portal's external address (OIDC redirect URI base); defaults to ``public_url``
    selfcare_public_url: str | None = None
    selfcare_session_hours: float = 8.0  # absolute lifetime of a portal session
    selfcare_session_idle_minutes: float = 30.0  # a session unused this long expires
    #: how long a process may serve a session, balance or profile from memory (the stated freshness bound)
    selfcare_cache_seconds: float = 1.0
    selfcare_otp_ttl_seconds: int = 300
    selfcare_otp_attempts: int = 5
    #: requests per minute: every client IP, every signed-in customer, and the sign-in/one-time-code endpoints
    selfcare_rate_limit_ip: str = "600/minute"
    selfcare_rate_limit_user: str = "300/minute"
    selfcare_rate_limit_auth: str = "20/minute"
    #: one-time codes sent to one number or address, and PDFs generated for one customer
    selfcare_rate_limit_codes: str = "5/hour"
    selfcare_rate_limit_documents: str = "20/minute"
    #: "memory://" (per process) or "redis://host:port" (shared by every process)
    selfcare_rate_limit_storage: str = "memory://"
    #: link a first sign-in by email only when OpenBSS's record of that email is verified too (characteristic
    #: ``emailVerified``): an email typed by an agent but never confirmed could belong to somebody else
    selfcare_link_requires_verified_email: bool = True
    #: the charging system's API (balances, usage), reached over HTTP; defaults to ``public_url``
    selfcare_charging_url: str | None = None
    selfcare_charging_timeout_seconds: float = 5.0
    #: the corporate customer directory (MariaDB/MySQL): "mysql://user:password@host:3306/database"
    selfcare_corporate_directory_url: str | None = None
    #: where itemized usage PDFs are archived: a directory ("file:///srv/archive", default ``data_dir/archive``) or
    #: "s3://bucket/prefix" with the s3_* settings
    selfcare_archive_url: str | None = None
    #: days an archived document is kept; 0 keeps it forever
    selfcare_archive_retention_days: int = 0
    #: months are cut in this time zone; a month is closed (its PDF final) this long after it ends
    selfcare_time_zone: str = "UTC"
    selfcare_month_close_hours: float = 24.0  # late usage records (Event-Timestamp) still belong to the month
    selfcare_brand_name: str = "OpenBSS Telecom"
    selfcare_brand_color: str = "#0B5FFF"
    selfcare_brand_address: str = "1 Network Way, 75001 Paris"
    selfcare_brand_support: str = "Support: 0800 000 000"
    #: "simulator" records SMS and email in the database (demo, tests); "webhook" delivers them to the operator's
    #: gateway: a signed JSON POST to ``messaging_webhook_url`` (see platform/messaging.py)
    messaging_channel: Literal["simulator", "webhook"] = "simulator"
    messaging_webhook_url: str | None = None
    messaging_webhook_secret: str = DEV_MESSAGING_SECRET  # demo mode only: refused at start-up otherwise
    #: the sandbox payment gateway's webhook signing secret (HMAC-SHA256)
    payments_sandbox_secret: str = DEV_SANDBOX_SECRET  # demo mode only (with the sandbox gateway): refused otherwise
    #: the card and direct-debit gateway: the built-in "sandbox", or "stripe" (payments_stripe_*)
    payments_gateway: Literal["sandbox", "stripe"] = "sandbox"
    payments_stripe_api_key: str | None = None
    payments_stripe_webhook_secret: str | None = None
    #: another address of Stripe's API (a local Stripe-compatible server in tests)
    payments_stripe_api_base: str | None = None
    #: the creditor of the SEPA direct-debit batches (pain.008)
    payments_sepa_creditor_name: str = "OpenBSS Telecom"
    payments_sepa_creditor_iban: str = DEV_SEPA_CREDITOR_IBAN
    payments_sepa_creditor_bic: str = DEV_SEPA_CREDITOR_BIC
    payments_sepa_creditor_id: str = "DE98ZZZ09999999999"
    #: a payment left initiated, pending or unknown this long is resolved by the janitor (seconds)
    payments_janitor_after_seconds: int = 120
    #: how often the worker settles the sandbox gateway's charges and runs the janitor (seconds)
    payments_loop_seconds: float = 5.0
    #: how often the worker's dunning scheduler evaluates every tenant (events re-evaluate an account at once)
    collections_loop_seconds: float = 60.0
    #: a claimed dunning step not finished within this many seconds is taken again by another scheduler
    collections_lease_seconds: int = 300
    #: reminders of one claim taken per transaction (each still exactly once: its message, its execution and its
    #: event are written together)
    collections_reminder_batch: int = Field(default=200, ge=1, le=5000)
    #: the ledger account credited with billed lines that name no product (late fees, fees added by collections)
    payments_ledger_other_revenue_account: str = "4900"
    messaging_retention_hours: float = 24.0

    # S3-compatible object storage (documents)
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_object_lock: bool = False

    log_level: str = "INFO"
    log_json: bool = True

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"


    @field_validator("hub_callback_allow")
    @classmethod
    def _networks(cls, value: str) -> str:
        import ipaddress

        for item in value.split(","):
            if item.strip():
                try:
                    ipaddress.ip_network(item.strip(), strict=False)
                except ValueError as exc:
                    raise ValueError(f"OPENBSS_HUB_CALLBACK_ALLOW: '{item.strip()}' is not a network (CIDR)") from exc
        return value

@lru_cache
def get_settings() -> Settings:
    return Settings()
