"""Real time: the broker behind broadcaster, per-process feeds, and the subscriptions."""
