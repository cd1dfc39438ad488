"""The order service's gRPC servicer: translate messages, call the use case."""

from __future__ import annotations

from qudao.common.v1 import page_pb2
from qudao.order.v1 import order_pb2, order_pb2_grpc

from services.order.domain.orders import LineInput
from services.order.service import OrderService, page_args


class OrderServicer(order_pb2_grpc.OrderServiceServicer):
    def __init__(self, service: OrderService) -> None:
        self.service = service

    async def UpsertProducts(self, request, context):
        created, updated, unchanged = await self.service.upsert_products(list(request.products))
        return order_pb2.UpsertProductsResponse(created=created, updated=updated,
                                                unchanged=unchanged)

    async def GetProduct(self, request, context):
        return order_pb2.GetProductResponse(product=await self.service.get_product(request.code))

    async def ListProducts(self, request, context):
        size, token = page_args(request.page)
        products, next_token = await self.service.list_products(request.product_line, size, token)
        return order_pb2.ListProductsResponse(
            products=products, page=page_pb2.PageInfo(next_page_token=next_token))

    async def SubmitOrder(self, request, context):
        order = await self.service.submit_order(
            request.dealer_id,
            [LineInput(line.product_code, line.quantity) for line in request.lines],
            request.client_order_ref,
        )
        return order_pb2.SubmitOrderResponse(order=order)

    async def GetOrder(self, request, context):
        return order_pb2.GetOrderResponse(order=await self.service.get_order(request.id))

    async def ListOrders(self, request, context):
        size, token = page_args(request.page)
        orders, next_token, total = await self.service.list_orders(request.dealer_id, size, token)
        return order_pb2.ListOrdersResponse(
            orders=orders, page=page_pb2.PageInfo(next_page_token=next_token, total_size=total))

    async def Ping(self, request, context):
        return order_pb2.PingResponse()
