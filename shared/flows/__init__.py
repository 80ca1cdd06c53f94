"""The bot flow interpreter: pure functions, no I/O (bots issue)."""
