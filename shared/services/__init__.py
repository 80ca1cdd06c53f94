"""The only code that changes state: plain functions, session first, keyword-only arguments, never commit."""
