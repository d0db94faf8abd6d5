"""The Kubernetes transport: everything above sees plain dicts and domain exceptions.

The client's transport errors (urllib3) become ``ClusterUnreachable`` and its ``ApiException``
becomes ``ApiError`` (``Forbidden`` for 403), each naming the verb and the resource, chained
``from e``; nothing above this package catches a client exception.

    connection   kubeconfig lists as kubectl reads them, in-cluster configuration, ``connect``
    retry        error mapping, ``retry`` under a deadline, the running step's ``patience``
    resources    typed get/list/apply/replace/create/delete through the dynamic client; an
                 ephemeral container added to a pod
    watch        ``Watch``, the one list-then-watch, and ``wait_gone``
    streams      the kubelet's streams: a port-forward websocket, logs
    portforward  a local relay to a Service's ready pod, or to each pod of a release
    kindcluster  ``--cluster=kind``: kind's binary and node image, images loaded into the node

May import: ``rolloutgate.errors``, ``rolloutgate.objects``, ``rolloutgate.manifests``
(``kindcluster``: the images a release needs), ``rolloutgate.config``. The names below are the
package's interface; callers write ``kube.get(...)``.
"""

from rolloutgate.kube.connection import IN_CLUSTER_TOKEN, connect, contexts, in_cluster
from rolloutgate.kube.resources import (
    add_ephemeral_container,
    create,
    delete,
    dynamic,
    get,
    list_objects,
    replace,
    resource,
    served_groups,
    server_side_apply,
)
from rolloutgate.kube.retry import (
    REQUEST_TIMEOUT_S,
    api_errors,
    message_of,
    patience,
    patient,
    retry,
    transient,
    unguarded,
)
from rolloutgate.kube.streams import LOG_TIMEOUT_S, PortForwardStream, pod_log
from rolloutgate.kube.watch import SYNCED, Watch, WatchEvent, wait_gone

__all__ = [
    "IN_CLUSTER_TOKEN",
    "LOG_TIMEOUT_S",
    "REQUEST_TIMEOUT_S",
    "SYNCED",
    "PortForwardStream",
    "Watch",
    "WatchEvent",
    "add_ephemeral_container",
    "api_errors",
    "connect",
    "contexts",
    "create",
    "delete",
    "dynamic",
    "get",
    "in_cluster",
    "list_objects",
    "message_of",
    "patience",
    "patient",
    "pod_log",
    "replace",
    "resource",
    "retry",
    "served_groups",
    "server_side_apply",
    "transient",
    "unguarded",
    "wait_gone",
]
