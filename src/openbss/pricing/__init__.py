"""Pricing: pure, exact functions (no I/O)."""
