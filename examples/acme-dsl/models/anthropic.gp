# Anthropic models: the fallback for Codex traffic and the default for Claude Code.
model claude-haiku-4-5-20251001 {
  providers = [anthropic-fallback]
  price = {input: 1.00, cached_input: 0.10, output: 5.00}
}

model claude-sonnet-4-5-20250929 {
  providers = [anthropic-fallback]
  price = {input: 3.00, cached_input: 0.30, output: 15.00}
}
