"""rolloutgate.canary."""
