# OpenAI models we pay for, at list price (USD per 1M tokens).
model gpt-5 {
  providers = [openai-primary]
  price = {input: 1.25, cached_input: 0.125, output: 10.00}
}

model gpt-5-mini {
  providers = [openai-primary]
  price = {input: 0.25, cached_input: 0.025, output: 2.00}
}

model gpt-4o {
  providers = [openai-primary, azure-east]
  price = {input: 2.50, cached_input: 1.25, output: 10.00}
}

model gpt-4o-mini {
  providers = [openai-primary, azure-east]
  price = {input: 0.15, cached_input: 0.075, output: 0.60}
}

model o3 {
  providers = [openai-primary]
  price = {input: 2.00, cached_input: 0.50, output: 8.00}
}
