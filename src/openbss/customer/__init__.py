"""Customers (TMF629): the parties the operator sells to, their segment, and the customer 360 view and search."""
