"""The TM Forum Open API kit (TMF630 conventions implemented once)."""
