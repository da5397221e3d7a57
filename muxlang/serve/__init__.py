"""The gateway, ``muxlang serve``: roles and backends behind OpenAI/Anthropic HTTP APIs.

- :mod:`muxlang.serve.formats` — wire formats ⇄ :mod:`muxlang.llm` (one internal type)
- :mod:`muxlang.serve.routing` — model names, execution modes, cooldowns
- :mod:`muxlang.serve.gateway` — one request: translate or pass through, stream, fall back
- :mod:`muxlang.serve.passthrough` — same-format relay to HTTP upstreams (httpx boundary)
- :mod:`muxlang.serve.app` — the ASGI application
- :mod:`muxlang.serve.server` — safety checks and hypercorn's trio worker
"""
