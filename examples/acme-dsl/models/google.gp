# Gemini models, used by the data-science team through gemini-cli.
model gemini-2.5-pro {
  providers = [gemini-main]
  price = {input: 1.25, cached_input: 0.31, output: 10.00}
}

model gemini-2.5-flash {
  providers = [gemini-main]
  price = {input: 0.30, cached_input: 0.075, output: 2.50}
}
