# Alice's personal-access keys.
virtual_key vk-alice-codex {
  key_sha256 = 1e91b63c54c691a0ac18b416ba1a8a52e5f4db250a70dfe9caf5880083c4dbfd
  key_prefix = gp-nFv8tChoQ
  principal = alice@acme.com
  team = engineering
  extends = codex-default
  description = "Codex CLI on her laptop"
}

virtual_key vk-alice-claude {
  key_sha256 = fe5bc9b479ed92300c1b586cf21aabf5a77e243e1fbc38e6716c1428ef92b269
  key_prefix = gp-LlUh2f_xv
  principal = alice@acme.com
  team = engineering
  extends = claude-code
}
