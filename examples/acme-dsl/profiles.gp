# Reusable VK settings.
profile codex-default {
  models_allowed = [gpt-5-mini, gpt-5, gpt-4o, claude-haiku-4-5-20251001]
  model_aliases = {fast: gpt-5-mini}
  fallback = {on: [5xx, timeout, 429], chain: [openai-primary, {provider: anthropic-fallback, model: claude-haiku-4-5-20251001}]}
  cache = {mode: force}  # respect, plus cache breakpoints for the translated Anthropic hop (GP312)
}

profile claude-code {
  models_allowed = [claude-sonnet-4-5-20250929, claude-haiku-4-5-20251001]
  cache = {mode: respect, allow_override: true}
}

profile notebooks {
  models_allowed = [gemini-2.5-*]
  model_aliases = {default: gemini-2.5-flash}
  cache = {mode: respect}
}
