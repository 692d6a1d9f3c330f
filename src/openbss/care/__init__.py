"""Customer care: trouble tickets (TMF621) with SLA timers, party interactions (TMF683)."""
