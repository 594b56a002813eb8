"""Trust-domain CA, node keys and SVIDs, join tokens, message signing."""
