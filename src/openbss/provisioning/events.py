"""Events provisioning emits.

* TMF641 (api ``serviceOrdering``), through the TMF kit, on its hub and the backbone: ``ServiceOrderCreateEvent``,
  ``ServiceOrderAttributeValueChangeEvent``, ``ServiceOrderStateChangeEvent``.
* ``OrderItemProvisioningStateChangeEvent`` (api ``provisioning``, on the backbone only: not a TMF API, no hub):
  the provisioning of one product order item moved — ``state`` is one of ``ITEM_STATES`` (``started``: its first
  step ran; ``retried``: an operator ran it again; then ``completed``, ``failed`` or ``cancelled``). The ordering
  domain reacts to it (the product order's item and state follow); its body::

      {"orderItemProvisioning": {"id": <item run>, "@type": "OrderItemProvisioning", "state": "completed",
       "productOrder": {"id"}, "productOrderItem": {"id"}, "serviceOrder": {"id"}, "generation": 1,
       "product": {"id"} (the product the item made live or changed), "failedStep", "reason"}}

  Events of one item arrive in the order they happened, but a consumer must not rely on it (a redelivery may come
  late): the state of record is provisioning's (``ProvisioningService.item_progress``).
"""

from __future__ import annotations

API = "serviceOrdering"
EVENT_TYPES = tuple(f"ServiceOrder{kind}Event" for kind in ("Create", "AttributeValueChange", "StateChange",
                                                              "Delete"))
ITEM_API = "provisioning"
ITEM_EVENT = "OrderItemProvisioningStateChangeEvent"
ITEM_KEY = "orderItemProvisioning"
ITEM_STATES = ("started", "retried", "completed", "failed", "cancelled")
