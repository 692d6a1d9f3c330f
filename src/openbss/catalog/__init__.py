"""Product catalog (TMF620)."""
