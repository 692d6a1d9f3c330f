"""Shopping carts (TMF663) and product orders (TMF622): what a customer buys, validated against the catalog."""
