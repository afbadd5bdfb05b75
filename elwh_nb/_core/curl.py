"""A signed delivery as a ``curl`` command line, as webhook.site's and ngrok's "copy as curl" give.

The body goes byte for byte (``--data-binary``): inline when it is short UTF-8 text, else
from a file (``@path``), which the caller writes. The command holds the signature header,
never the secret; a signature is only good within the receiver's tolerance (30 minutes by
default), so a command is for now, not for a script kept for later.
"""

from __future__ import annotations

import shlex

#: Bodies up to this many bytes go inline; longer ones (audio) from a file.
INLINE_MAX = 64 * 1024


class Command(str):
    """A command line that shows as itself in a notebook (not as a quoted string)."""

    def __repr__(self) -> str:
        return str(self)


def inline(body: bytes) -> bool:
    """Whether ``body`` can go on the command line itself (short, UTF-8, no NUL)."""
    if len(body) > INLINE_MAX or b"\x00" in body:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def command(url: str, signature: str, body: bytes | None = None, body_path: str | None = None) -> Command:
    """``curl`` POSTing ``body`` (or the file at ``body_path``) to ``url`` with ``signature``."""
    if (body is None) == (body_path is None):
        raise ValueError("give the body or the path of a file holding it, not both")
    if body is not None and not inline(body):
        raise ValueError("this body cannot go on a command line: write it to a file and pass body_path")
    data = f"@{body_path}" if body_path is not None else (body or b"").decode("utf-8")
    lines = [
        f"curl -sS -X POST {shlex.quote(url)}",
        f"-H {shlex.quote('Content-Type: application/json')}",
        f"-H {shlex.quote(f'ElevenLabs-Signature: {signature}')}",
        f"--data-binary {shlex.quote(data)}",
    ]
    return Command(" \\\n  ".join(lines))
