"""Billing: bill cycles, charges from what was sold, bill runs, TMF678 customer bills."""
