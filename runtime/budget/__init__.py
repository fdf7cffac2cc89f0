"""Budgets at runtime: calendar windows, cost of usage, the gate that reserves and settles spend."""
