# Carol's personal-access key; she evaluates o3 for the reasoning pilot until June.
virtual_key vk-carol-codex {
  key_sha256 = 5e232f245902a5604155a9155a3980f0dd445c79c57d59cdf47c23e5c669ba53
  key_prefix = gp-JXvaxM_HH
  principal = carol@acme.com
  team = engineering
  extends = codex-default
  models_allowed = [gpt-5-mini, gpt-5, gpt-4o, o3, claude-haiku-4-5-20251001]
  expires_at = 2027-06-30T00:00:00Z
}
