"""The gate's settings, and where each one came from.

Each setting is resolved, first found wins: command-line option → environment variable
``ROLLOUTGATE_<NAME>`` → the cluster profile ``[tool.rolloutgate.clusters.<cluster>]`` → the
project table ``[tool.rolloutgate]`` → the default below. Every default users tune lives here.

Converters raise ``argparse.ArgumentTypeError`` naming the accepted format, so the same function
serves as an option's ``type=`` (argparse turns it into a usage error) and checks values read
from the environment and from pyproject.toml (``resolve`` turns those into ``ConfigError``s
naming where the value came from).

    convert   converters (an option's ``type=``), ``Header``
    settings  ``SETTINGS``, ``Setting``, ``GateConfig`` and its parts
    resolve   ``resolve``: option → env → profile → project table → default

May import: ``rolloutgate.errors``, ``rolloutgate.objects``, ``rolloutgate.redact``.
"""

from rolloutgate.config.convert import (
    ENV_PREFIX,
    KIND,
    Header,
    container_path,
    count,
    flag,
    headers,
    http_path,
    image,
    image_tag,
    images,
    metric_labels,
    metric_name,
    name,
    namespace,
    path,
    paths,
    port,
    seconds,
    url,
)
from rolloutgate.config.resolve import environ, read_pyproject, resolve, resolve_settings
from rolloutgate.config.settings import (
    CLUSTER,
    SETTINGS,
    GateConfig,
    HealthPaths,
    MetricsCheck,
    Setting,
    Timeouts,
)

__all__ = [
    "CLUSTER",
    "ENV_PREFIX",
    "KIND",
    "SETTINGS",
    "GateConfig",
    "Header",
    "HealthPaths",
    "MetricsCheck",
    "Setting",
    "Timeouts",
    "container_path",
    "count",
    "environ",
    "flag",
    "headers",
    "http_path",
    "image",
    "image_tag",
    "images",
    "metric_labels",
    "metric_name",
    "name",
    "namespace",
    "path",
    "paths",
    "port",
    "read_pyproject",
    "resolve",
    "resolve_settings",
    "seconds",
    "url",
]
