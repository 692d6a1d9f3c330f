"""Service orders (TMF641), the durable activation steps that carry them out, network-element adapters and their
simulators."""
