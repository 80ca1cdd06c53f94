"""Bulk template campaigns: pure helpers (per-recipient variables, cost estimates) the services call."""
