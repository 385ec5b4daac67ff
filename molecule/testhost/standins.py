"""Local stand-ins for the official images (built in the next commit)."""

from common import TesthostError


def build() -> dict:
    raise TesthostError("stand-in images are not implemented yet")
