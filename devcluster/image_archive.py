#!/usr/bin/env python3
"""Writes a one-layer Docker image archive from static binaries, for ``ctr images import``.

No registry is reachable, so the images the cluster itself needs are made here from Debian's
static binaries, without Docker:

- the pod sandbox ("pause") image: catatonit run as ``catatonit -P``, which sleeps and reaps
  zombies — all a sandbox needs;
- a tiny test image for the cluster tooling's own tests: busybox, whose ``httpd`` serves a page.

Usage: image_archive.py --tag TAG --file SRC:DEST [--file ...] [--text DEST=CONTENT ...]
                        [--user UID:GID] --output OUT.tar -- ENTRYPOINT...
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name.lstrip("/"))
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def layer(files: dict[str, Path], texts: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        # Parent directories first: some unpackers do not create them implicitly.
        dirs = sorted({str(Path(p).parent).lstrip("/") for p in [*files, *texts]} - {""})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for dest, src in sorted(files.items()):
            _add(tar, dest, src.read_bytes(), 0o755)
        for dest, text in sorted(texts.items()):
            _add(tar, dest, text.encode(), 0o644)
    return buf.getvalue()


def archive(tag: str, layer_tar: bytes, entrypoint: list[str], user: str | None) -> bytes:
    diff_id = "sha256:" + hashlib.sha256(layer_tar).hexdigest()
    container_config: dict[str, object] = {"Entrypoint": entrypoint}
    if user:
        container_config["User"] = user
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": container_config,
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        },
        sort_keys=True,
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_name = diff_id.removeprefix("sha256:") + "/layer.tar"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": [layer_name]}])

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        _add(tar, config_name, config, 0o644)
        _add(tar, layer_name, layer_tar, 0o644)
        _add(tar, "manifest.json", manifest.encode(), 0o644)
    return out.getvalue()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", required=True)
    parser.add_argument("--file", action="append", default=[], metavar="SRC:DEST")
    parser.add_argument("--text", action="append", default=[], metavar="DEST=CONTENT")
    parser.add_argument("--user")
    parser.add_argument("--output", required=True, type=Path)
    parser.add_argument("entrypoint", nargs="+")
    args = parser.parse_args(argv)

    files: dict[str, Path] = {}
    for spec in args.file:
        src, sep, dest = spec.partition(":")
        if not sep or not Path(src).is_file():
            parser.error(f"--file {spec!r}: expected SRC:DEST with an existing SRC file")
        files[dest] = Path(src)
    texts = dict(t.partition("=")[::2] for t in args.text)
    args.output.write_bytes(archive(args.tag, layer(files, texts), args.entrypoint, args.user))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
