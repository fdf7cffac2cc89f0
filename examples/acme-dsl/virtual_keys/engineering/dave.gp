# Dave left the company; the key stays on record, refused with 401.
virtual_key vk-dave-codex {
  key_sha256 = 4ec966d15f36b40da8b2ebdaaac81961eb172fab05406caaaf4792fd98fbe91d
  key_prefix = gp-lUbT85fPK
  principal = dave@acme.com
  team = engineering
  extends = codex-default
  status = revoked
}
