"""Machine plane: SWIM membership with phi-accrual suspicion (DHT and gossip come next)."""
