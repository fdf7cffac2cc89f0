# Keys owned by the team rather than a person.
virtual_key vk-platform-shared {
  key_sha256 = 8f6fc7d4e318b306e70a10b4f90f4a60d5a54c16f960cfbdaa8ce5c2c3d95a84
  key_prefix = gp-y0KhWlLeW
  team = engineering
  extends = codex-default
  description = "CI bots and shared tooling"
  model_aliases = {gpt-4o: azure-east/gpt-4o}
}

virtual_key vk-cold-benchmark {
  key_sha256 = 26fda2dec1e0684a46082f1f9f567b6823efc337bc152e5ff399dba5f5a79b32
  key_prefix = gp-EHfS2qzGl
  team = engineering
  extends = codex-default
  description = "Cold-run cost measurements; provider prompt caches must not help"
  cache = {mode: disable}
}
