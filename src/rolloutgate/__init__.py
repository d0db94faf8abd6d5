"""rolloutgate: a release gate for ML model services on Kubernetes, as a pytest plugin."""

__version__ = "0.1.0"
