"""How ordering is put together: TMF663 shopping carts, TMF622 product orders and cancellations, and the services
over them, built once per process by the composition root (``openbss.services``)."""

from __future__ import annotations

from dataclasses import dataclass

from openbss.account.service import AccountService
from openbss.catalog.service import ProductCatalog
from openbss.customer.service import CustomerService
from openbss.inventory.service import InventoryService
from openbss.ordering import events
from openbss.ordering.cart import CartRules, CartService
from openbss.ordering.models import CancelProductOrder, ProductOrder, ShoppingCart
from openbss.ordering.schemas import CART_SPEC, ORDER_SPEC
from openbss.ordering.service import CancelOrderService, OrderRules, ProductOrderService
from openbss.platform.events.consumers import Consumer
from openbss.platform.tmf.resource import ResourceService, TmfApi, TmfResource, resource_services
from openbss.provisioning.service import ProvisioningService
from openbss.settings import Settings


@dataclass(frozen=True)
class OrderingServices:
    service: ProductOrderService
    cart_service: CartService
    cancellations: CancelOrderService
    cart_api: TmfApi
    order_api: TmfApi
    carts: dict[str, ResourceService]  # shoppingCart
    orders: dict[str, ResourceService]  # productOrder, cancelProductOrder
    settings: Settings

    @property
    def apis(self) -> list[TmfApi]:
        return [self.cart_api, self.order_api]

    def consumers(self) -> list[Consumer]:
        """Ordering's reactions to other domains' events."""
        return [events.item_provisioning_consumer(self.service, self.settings.public_url)]


def build(settings: Settings, catalog: ProductCatalog, customers: CustomerService, accounts: AccountService,
          inventory: InventoryService, provisioning: ProvisioningService) -> OrderingServices:
    cart_api = TmfApi(
        name=events.CART_API, title="TMF663 Shopping Cart", spec_file=CART_SPEC, permission="ordering",
        resources=[TmfResource(path="shoppingCart", type="ShoppingCart", table=ShoppingCart,
                               hooks=CartRules(catalog), owner_paths=("relatedParty.id",))])
    order_api = TmfApi(
        name=events.API, title="TMF622 Product Ordering", spec_file=ORDER_SPEC, permission="ordering",
        resources=[
            TmfResource(path="productOrder", type="ProductOrder", table=ProductOrder, hooks=OrderRules(),
                        state_field="state", initial_state="acknowledged", owner_paths=("relatedParty.id",),
                        update_definition="OpenBSSProductOrder_Update",
                        operations=frozenset({"create", "list", "get", "patch"}),
                        customer_operations=frozenset({"list", "get"})),
            TmfResource(path="cancelProductOrder", type="CancelProductOrder", table=CancelProductOrder,
                        state_field="state", initial_state="inProgress",
                        update_definition="OpenBSSCancelProductOrder_Update",
                        operations=frozenset({"create", "list", "get"}), customer_operations=frozenset()),
        ])
    orders = ProductOrderService(order_api, order_api.resource("productOrder"), catalog=catalog,
                                 customers=customers, accounts=accounts, inventory=inventory,
                                 provisioning=provisioning, settings=settings)
    cancellations = CancelOrderService(order_api, order_api.resource("cancelProductOrder"), orders)
    orders.cancellations = cancellations
    carts = CartService(cart_api, cart_api.resource("shoppingCart"), orders)
    return OrderingServices(
        service=orders, cart_service=carts, cancellations=cancellations, cart_api=cart_api, order_api=order_api,
        carts=resource_services(cart_api, {"shoppingCart": carts}),
        orders=resource_services(order_api, {"productOrder": orders, "cancelProductOrder": cancellations}),
        settings=settings)
