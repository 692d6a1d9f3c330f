"""Mediation and batch rating of usage files (TMF635 usage out): see docs/rating.md."""
