"""MLServer runtimes for the faulty iris releases.

Both subclass MLServer's own scikit-learn runtime, so everything but the injected fault is
the behaviour a real release has.
"""

from __future__ import annotations

import asyncio
import logging
import time

from mlserver.types import InferenceRequest, InferenceResponse
from mlserver_sklearn import SKLearnModel

logger = logging.getLogger("mlserver")


class SlowSKLearnModel(SKLearnModel):
    """Correct predictions, each one late by parameters.extra.delay_seconds.

    The sleep is async so concurrent requests are all late together rather than queued:
    the release is slow, not overloaded.
    """

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        extra = self.settings.parameters.extra if self.settings.parameters else None
        await asyncio.sleep(float((extra or {}).get("delay_seconds", 1.5)))
        return await super().predict(payload)


class HeavierSKLearnModel(SKLearnModel):
    """Correct predictions, each after parameters.extra.cpu_seconds of extra CPU work: a model
    that costs more to run. Unlike a sleep (``SlowSKLearnModel``), the extra is CPU time, so it
    waits for the CPU as the rest of the server's work does and stays about the same share of
    the server's time on a busy node as on a quiet one."""

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        extra = self.settings.parameters.extra if self.settings.parameters else None
        until = time.thread_time() + float((extra or {}).get("cpu_seconds", 0.0))
        while time.thread_time() < until:
            pass
        return await super().predict(payload)


class CheckedSKLearnModel(SKLearnModel):
    """Refuses to become ready when the model does not have the classes the settings expect.

    load() returning False is MLServer's way to keep a model registered but not ready:
    /v2/health/live stays 200, /v2/health/ready and /v2/models/<m>/ready stay 400. (Raising
    instead would make MLServer remove the model and shut down.)
    """

    async def load(self) -> bool:
        await super().load()
        extra = self.settings.parameters.extra if self.settings.parameters else None
        expected = (extra or {}).get("expected_classes")
        found = len(self._model.classes_)
        if expected is not None and found != expected:
            logger.error(
                "model %s has %d classes, settings expect %s: staying not ready",
                self.name,
                found,
                expected,
            )
            return False
        return True
