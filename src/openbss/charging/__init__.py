"""Online charging (OCS): balances and buckets (TMF654), credit-control sessions, real-time rating, usage (TMF635)."""
