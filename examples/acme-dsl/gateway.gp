# Gateway-wide settings. Headers match what our engineers' tooling already reads.
gateway {
  header_prefix = X-LangWatch-
  client_deadline_s = 600
  max_body_bytes = 16777216
}
