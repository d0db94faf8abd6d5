"""rolloutgate.release."""
