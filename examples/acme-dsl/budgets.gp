# Spend limits. Thresholds compare with >=; block answers 402 budget_exceeded.
budget eng-daily {
  scope = team
  target = engineering
  window = day
  timezone = Europe/Amsterdam
  limit_usd = 100
  on_breach = {warn: 80%, block: 100%}
}

budget per-engineer {
  scope = principal
  target = *
  window = month
  limit_usd = 300
  on_breach = {warn: 80%, block: 100%}
}

budget ds-weekly {
  scope = team
  target = data-science
  window = week
  timezone = America/New_York
  limit_usd = 250
  on_breach = {warn: 75%, block: 100%}
}

budget cold-benchmark-weekly {
  scope = vk
  target = vk-cold-benchmark
  window = week
  limit_usd = 50
  on_breach = {block: 100%}
}

budget org-monthly {
  scope = org
  window = month
  limit_usd = 20000
  on_breach = {warn: 90%, block: 110%}
}
