"""Domain exceptions of the gate.

Every message names the object, the condition, what was seen last and what to try next.
Names say the policy: a ``ConfigError`` is the user's input and retrying will not help; a
``ClusterError`` is the cluster's state.
"""

from __future__ import annotations


class GateError(Exception):
    """Base class: a gate step could not be carried out."""


class ConfigError(GateError):
    """Bad input (options, profiles, manifests, golden file). Nothing was changed on the cluster."""


class ClusterError(GateError):
    """The cluster could not be reached or refused a request."""


class ClusterUnreachable(ClusterError):
    """The API server did not answer. Transient: a wait retries it until its deadline."""


class ApiError(ClusterError):
    """The API server refused a request; ``status`` is its HTTP status (0: no status).

    The message names the verb and the resource, and carries the server's own message.
    429 and 5xx are transient (a wait retries them); anything else is not.
    """

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status

    @property
    def untyped_patch(self) -> bool:
        """Server-side apply answers a field the schema does not declare, or one of the wrong
        type, with a 500 ("failed to create typed patch object"): the manifest's fault, and
        the same answer on every retry."""
        return self.status == 500 and "failed to create typed patch object" in str(self)

    @property
    def transient(self) -> bool:
        # Not the untyped patch: retried, a typo in a manifest took the whole API patience
        # (120 s) to be reported.
        return (self.status == 429 or self.status >= 500) and not self.untyped_patch


class Forbidden(ApiError):
    """403: the gate's credentials lack a permission; the message names verb, resource and
    namespace (docs/rbac.md lists what the gate needs)."""


class LockHeld(ClusterError):
    """Another gate holds the target's lease."""


class LockLost(LockHeld):
    """This gate's lease was taken or deleted while it ran: another gate owns the target, so
    this one must change nothing more (no apply, no restore)."""


class RolloutFailed(ClusterError):
    """The new release cannot become ready (crash loop, image missing, deadline exceeded...)."""

    def __init__(
        self, message: str, *, reason: str, pod: str | None = None, container: str | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.pod = pod
        self.container = container  # the failing container whose log tells why, if any


class RolloutTimeout(RolloutFailed):
    """The gate's own deadline passed before the rollout finished."""


class RollbackFailed(ClusterError):
    """Restoring the snapshot, or proving it healthy, failed."""


class UnknownKind(ConfigError):
    """A manifest's kind (or apiVersion) is not served by the API server."""
