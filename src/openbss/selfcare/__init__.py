"""Customer self-care portal and its backend."""
