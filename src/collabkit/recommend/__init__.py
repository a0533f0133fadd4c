"""Top-N recommendation and cold start."""
