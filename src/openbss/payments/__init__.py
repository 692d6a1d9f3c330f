"""Payments: payment methods (TMF670), payments and refunds (TMF676) through gateways, their allocation to bills,
and the double-entry ledger."""
