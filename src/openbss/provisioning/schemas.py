"""TMF641 shapes, from the official specification."""

from __future__ import annotations

SPEC_FILE = "TMF641-ServiceOrdering-v4.1.0.swagger.json"
