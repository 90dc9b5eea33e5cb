"""Classification heads on top of a base model held as a sub-config (continuous, token and token-image bases)."""
