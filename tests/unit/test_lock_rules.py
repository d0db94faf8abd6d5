"""Lease expiry and descriptions (pure parts of the lock)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from rolloutgate.release.lock import default_holder, describe, expiry, is_free, lease_name


def lease(holder: str | None = "ci@runner/pid-1/ab", renew: str | None = None) -> dict:  # type: ignore[type-arg]
    spec: dict[str, object] = {
        "leaseDurationSeconds": 60,
        "acquireTime": "2024-05-01T10:00:00.000000Z",
    }
    if holder:
        spec["holderIdentity"] = holder
    if renew:
        spec["renewTime"] = renew
    return {"metadata": {"name": "rolloutgate-iris"}, "spec": spec}


NOW = datetime(2024, 5, 1, 10, 0, 30, tzinfo=UTC)


def test_expiry_is_renew_time_plus_duration() -> None:
    assert expiry(lease(renew="2024-05-01T10:00:20.500000Z")) == datetime(
        2024, 5, 1, 10, 1, 20, 500000, tzinfo=UTC
    )


def test_expiry_falls_back_to_acquire_time() -> None:
    assert expiry(lease()) == datetime(2024, 5, 1, 10, 1, 0, tzinfo=UTC)


def test_held_lease_is_not_free_until_it_expires() -> None:
    held = lease(renew="2024-05-01T10:00:20.000000Z")
    assert not is_free(held, NOW)
    assert is_free(held, datetime(2024, 5, 1, 10, 1, 21, tzinfo=UTC))


def test_lease_without_holder_is_free() -> None:
    assert is_free(lease(holder=None), NOW)


def test_describe_names_holder_and_expiry() -> None:
    text = describe(lease(renew="2024-05-01T10:00:20.000000Z"), NOW)
    assert "held by ci@runner/pid-1/ab" in text
    assert "expires 2024-05-01T10:01:20.000000Z (in 50 s)" in text
    later = describe(lease(), datetime(2024, 5, 1, 10, 2, 0, tzinfo=UTC))
    assert "expired 2024-05-01T10:01:00.000000Z (60 s ago)" in later


def test_names() -> None:
    assert lease_name("iris") == "rolloutgate-iris"
    holder = default_holder()
    assert re.fullmatch(r"[^@]+@[^/]+/pid-\d+/[0-9a-f]{8}", holder)
    assert holder != default_holder()
