"""rolloutgate.pytest."""
