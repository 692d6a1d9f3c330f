"""TMF622 and TMF663 shapes, from the official specifications."""

from __future__ import annotations

from openbss.platform.tmf.spec import load_spec

ORDER_SPEC = "TMF622-ProductOrder-v4.0.0.swagger.json"
CART_SPEC = "TMF663-ShoppingCart-v4.0.0.swagger.json"

order_spec = load_spec(ORDER_SPEC)
# TMF622's ProductOrder_Update repeats productOrderItem as required, which would make every PATCH resend the items;
# a merge patch carries what changes. CancelProductOrder has no update shape (it is never patched).
if "OpenBSSProductOrder_Update" not in order_spec.definitions:
    order_spec.definitions["OpenBSSProductOrder_Update"] = {
        k: v for k, v in order_spec.definitions["ProductOrder_Update"].items() if k != "required"}
    order_spec.definitions["OpenBSSCancelProductOrder_Update"] = {"type": "object", "properties": {}}
