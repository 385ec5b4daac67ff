"""Print the production image's size and build times, measured in a real test host.

Boots its own test host (img2 by default), builds the image rootless on the stand-in
Python base, and prints: the cold build time, the image size in total and above the base,
and the rebuild time after a code-only change. Needs root (systemd-nspawn).
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "molecule" / "testhost"))

from imagehost import BASE_IMAGE, BUILD_CONTEXT_CHANGE, ImageHost

HOST_NAME = os.environ.get("SENEX_IMAGE_BENCH_HOST", "img2")
SSH_PORT = int(os.environ.get("SENEX_IMAGE_BENCH_SSH_PORT", "2212"))
IMAGE = "localhost/senex-trader:bench"


def size(host: ImageHost, image: str) -> int:
    inspect = host.check(f"podman image inspect {image}", user="builder").stdout
    return int(json.loads(inspect)[0]["Size"])


def megabytes(count: int) -> str:
    return f"{count / 1_000_000:.1f} MB"


def main() -> None:
    host = ImageHost(HOST_NAME, SSH_PORT)
    host.create()
    try:
        host.prepare()
        host.upload_context()
        cold = host.timed_build(IMAGE)
        total, base = size(host, IMAGE), size(host, BASE_IMAGE)
        context = "/home/builder/context-code-change"
        host.upload_context(context, change=BUILD_CONTEXT_CHANGE)
        rebuild = host.timed_build(f"{IMAGE}-code-change", context)
    finally:
        host.destroy()
    print(f"base image ({BASE_IMAGE}): {megabytes(base)}")
    print(f"image total: {megabytes(total)}")
    print(f"image above base: {megabytes(total - base)}")
    print(f"cold build (empty pip cache): {cold:.1f} s")
    print(f"rebuild after a code-only change ({BUILD_CONTEXT_CHANGE}): {rebuild:.1f} s")


if __name__ == "__main__":
    main()
