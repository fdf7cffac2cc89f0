# Bob's personal-access key.
virtual_key vk-bob-codex {
  key_sha256 = 116d38da20096313dc5b7be0971d8d4eebbf5560846b91efee083127f359ed25
  key_prefix = gp-82Lr31nVl
  principal = bob@acme.com
  team = engineering
  extends = codex-default
}
