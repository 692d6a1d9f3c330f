"""``openbss demo`` and its data: the demo tenant's parties, catalog, customers, orders, prepaid and postpaid lines,
the self-care portal's customers and corporate directory, and the built-in OpenID providers customers sign in with.
Nothing in the domains imports this package; tests and benchmarks use its data."""
