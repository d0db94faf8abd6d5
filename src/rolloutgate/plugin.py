"""pytest entry point of rolloutgate (options, hooks, fixture wiring). Work in progress."""
