"""Shared mechanisms with no business rules: db, tenancy, auth, TMF API kit, events, jobs, observability."""
