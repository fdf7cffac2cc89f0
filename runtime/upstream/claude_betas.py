"""Which of a client's `anthropic-beta` flags Claude on Bedrock and Vertex accepts.

Claude Code and the SDKs send flags of Anthropic's own API (`claude-code-20250219`,
`prompt-caching-scope-...`, `oauth-...`) beside ones the clouds serve too; Bedrock and Vertex
refuse a request naming a flag they do not know, and refuse a beta field (`context_management`)
whose flag is missing. So the flags both clouds document are passed on, and the rest left out.
"""

from __future__ import annotations

from collections.abc import Mapping

CLOUD_BETAS = frozenset({
    "computer-use-2024-10-22", "computer-use-2025-01-24", "computer-use-2025-11-24",
    "token-efficient-tools-2025-02-19", "interleaved-thinking-2025-05-14", "output-128k-2025-02-19",
    "dev-full-thinking-2025-05-14", "context-1m-2025-08-07", "context-management-2025-06-27",
    "effort-2025-11-24", "tool-search-tool-2025-10-19", "tool-examples-2025-10-29",
    "fine-grained-tool-streaming-2025-05-14",
})


def cloud_betas(client_headers: Mapping[str, str]) -> list[str]:
    """The client's beta flags the clouds accept, in the client's order."""
    flags = (flag.strip() for flag in client_headers.get("anthropic-beta", "").split(","))
    return [flag for flag in flags if flag in CLOUD_BETAS]
