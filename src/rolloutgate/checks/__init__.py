"""rolloutgate.checks."""
