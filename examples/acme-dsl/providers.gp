# Upstream accounts. Keys live in the deployment's environment, never here.
provider openai-primary {
  type = openai
  api_key = env:OPENAI_API_KEY
}

provider azure-east {
  type = azure_openai
  base_url = https://acme-east.openai.azure.com
  api_version = "2024-10-21"
  api_key = env:AZURE_EAST_KEY
  deployments = {gpt-4o: gpt4o-prod, gpt-4o-mini: gpt4o-mini-prod}
  timeouts = {connect_s: 5, read_s: 60, total_s: 120}
}

provider anthropic-fallback {
  type = anthropic
  api_key = env:ANTHROPIC_API_KEY
}

provider gemini-main {
  type = gemini
  api_key = env:GEMINI_API_KEY
}
