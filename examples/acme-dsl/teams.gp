# Teams and their members. A personal VK must belong to a member of its team.
team engineering {
  description = "Product engineering (Codex and Claude Code users)"
  members = [alice@acme.com, bob@acme.com, carol@acme.com, dave@acme.com]
  defaults = {models_allowed: [gpt-5-mini, gpt-4o]}
}

team data-science {
  description = "Analytics and ML"
  members = [erin@acme.com, frank@acme.com]
  defaults = {models_allowed: [gemini-2.5-flash]}
}
