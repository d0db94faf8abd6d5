"""A listing is read as plain JSON (not the dynamic client's ResourceInstance): its items
still carry the list's apiVersion and kind, which a listing's items lack."""

from __future__ import annotations

from rolloutgate.kube import resources


def test_items_get_the_lists_kind_and_api_version() -> None:
    listing = {
        "apiVersion": "v1",
        "kind": "PodList",
        "metadata": {"resourceVersion": "7"},
        "items": [{"metadata": {"name": "a"}}, {"kind": "Pod", "metadata": {"name": "b"}}],
    }
    out = resources._plain(None, listing)
    assert [(i["apiVersion"], i["kind"]) for i in out["items"]] == [("v1", "Pod"), ("v1", "Pod")]
    assert out["metadata"]["resourceVersion"] == "7"
    assert resources._plain(None, {"kind": "PodList", "items": None})["items"] == []
    assert resources._plain(None, {"kind": "Pod", "metadata": {}}) == {
        "kind": "Pod",
        "metadata": {},
    }
