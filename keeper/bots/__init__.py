"""Keeper bots: one class per bot with `run_once()`, an in-progress guard, `health()` and `dry_run`."""
