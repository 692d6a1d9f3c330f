"""Accounts (TMF666): billing, party, settlement and financial accounts, bill cycle specifications, bill formats
and presentation media."""
