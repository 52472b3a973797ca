"""The legacy graphql-ws protocol (subscriptions-transport-ws), carrying any operation.

Strawberry's handler for it runs documents through ``Schema.subscribe``,
which refuses queries and mutations; the protocol (and our contract) carry
them too. ``Schema.stream`` runs every kind, so the handler uses that.
"""

from __future__ import annotations

import asyncio
from typing import Any

from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import CompleteMessage, ErrorMessage
from strawberry.types.execution import PreExecutionError


class AnyOperationGraphQLWSHandler(BaseGraphQLWSHandler[Any, Any]):
    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        # Kept in step with BaseGraphQLWSHandler.handle_async_results, but for
        # the call to stream() where it calls subscribe().
        try:
            result_source = await self.schema.stream(
                query=query,
                variable_values=variables,
                operation_name=operation_name,
                context_value=self.context,
                root_value=self.root_value,
            )
            self.subscriptions[operation_id] = result_source
            is_first_result = True
            async for result in result_source:
                if is_first_result and isinstance(result, PreExecutionError):
                    assert result.errors
                    await self.send_message(
                        ErrorMessage(
                            type="error", id=operation_id, payload=result.errors[0].formatted
                        )
                    )
                    return
                await self.send_data_message(result, operation_id)  # type: ignore[arg-type]  # queries yield plain ExecutionResults
                is_first_result = False
            await self.send_message(CompleteMessage(type="complete", id=operation_id))
        except asyncio.CancelledError:
            await self.send_message(CompleteMessage(type="complete", id=operation_id))
        finally:
            self.subscriptions.pop(operation_id, None)
            self.tasks.pop(operation_id, None)
