"""Parties (TMF632): individuals and organizations."""
