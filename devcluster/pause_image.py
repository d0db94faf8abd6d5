#!/usr/bin/env python3
"""Writes a Docker image archive holding only Debian's static catatonit, run as ``catatonit -P``.

No registry is reachable, so the pod sandbox ("pause") image is made here. ``catatonit -P`` is
a pause process: it sleeps and reaps zombies, which is all a sandbox needs. Docker-archive is
what ``ctr images import`` reads; building it by hand keeps the cluster free of a Docker
dependency.

Usage: pause_image.py TAG CATATONIT OUTPUT.tar
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path


def layer(binary: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = binary.read_bytes()
        info = tarfile.TarInfo("catatonit")
        info.size = len(data)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def archive(tag: str, binary: Path) -> bytes:
    layer_tar = layer(binary)
    diff_id = "sha256:" + hashlib.sha256(layer_tar).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": ["/catatonit", "-P"], "User": "65535:65535"},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        },
        sort_keys=True,
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_name = diff_id.removeprefix("sha256:") + "/layer.tar"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [tag], "Layers": [layer_name]}]
    ).encode()

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in ((config_name, config), (layer_name, layer_tar), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    tag, binary, output = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    if not binary.is_file():
        print(f"pause_image: {binary} not found; install Debian's catatonit", file=sys.stderr)
        return 1
    output.write_bytes(archive(tag, binary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
