"""Inventory (TMF637 products, TMF638 services, TMF639 resources) and the resource pools orders draw from."""
