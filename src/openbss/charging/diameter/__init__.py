"""Diameter Gy/Ro front end of online charging (RFC 6733, RFC 4006, 3GPP TS 32.299): see ``server.py``."""
