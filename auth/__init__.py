"""Who is calling: passwords, tokens, and request/connection authentication."""
