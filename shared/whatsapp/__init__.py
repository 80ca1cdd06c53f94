"""Graph API client, error classification, webhook signature and parsing (WhatsApp channel issue)."""
