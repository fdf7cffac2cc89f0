"""Pure translations between the OpenAI (Chat Completions, Responses) and Anthropic Messages wire
formats: requests, whole answers and streams, tool calls included. No I/O; the proxy's
`runtime/translation.py` picks one per route hop."""
