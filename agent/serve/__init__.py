"""The OpenAI-compatible policy server: a FastAPI app over a local model, batching concurrent requests. Importing it
imports torch. `agent.wiring.PolicyServer` runs it in a thread, `shop-r1 serve-policy` in the foreground."""

from .server import ChatCompletionRequest, ServerStats, create_policy_app

__all__ = ["ChatCompletionRequest", "ServerStats", "create_policy_app"]
