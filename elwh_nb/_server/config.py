"""A receiver's options (what ``start()`` takes), each checked here, before anything starts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import KW_ONLY, InitVar, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._core.protocol import DEFAULT_MAX_BODY
from .._core.signature import DEFAULT_FUTURE_TOLERANCE, DEFAULT_TOLERANCE, Secret, secret_keys
from . import tunnel_urls as _tunnel_urls

if TYPE_CHECKING:
    from .._core.store import EventStore


@dataclass(frozen=True)
class ReceiverConfig:
    """What a receiver runs with; ``start()`` takes the same names and documents them.

    ``secret`` is read once (an iterator is used up by reading) into :attr:`keys`, its HMAC
    keys, which no repr shows; the config keeps no other copy of it.
    """

    secret: InitVar[Secret]
    _: KW_ONLY
    port: int = 0
    host: str = "127.0.0.1"
    path: str = "/webhook"
    store: EventStore | str | Path | None = None
    tolerance: float | None = DEFAULT_TOLERANCE
    future_tolerance: float | None = DEFAULT_FUTURE_TOLERANCE
    max_body: int = DEFAULT_MAX_BODY
    public_url: str | None = None
    body_timeout: float = 120.0
    tunnel: str | None = None
    remote_port: int | None = None
    ssh_options: Sequence[str] | None = None
    tunnel_timeout: float = 30.0
    call_secret: str | None = field(default=None, repr=False)
    #: The HMAC keys of ``secret``: the first signs what the kit itself sends.
    keys: tuple[bytes, ...] = field(init=False, repr=False)

    def __post_init__(self, secret: Secret) -> None:
        _int("port", self.port)
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0-65535 (0: a free one), not {self.port}")
        if not isinstance(self.host, str):
            raise TypeError(f"host must be a str such as '127.0.0.1', not {type(self.host).__name__}")
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise ValueError(f"path must start with '/', not {self.path!r}")
        _int("max_body", self.max_body)
        if self.max_body <= 0:
            raise ValueError(f"max_body must be a positive number of bytes, not {self.max_body}")
        for name in ("tolerance", "future_tolerance"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ValueError(f"{name} must be None or at least 0 seconds, not {value}")
        for name in ("body_timeout", "tunnel_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {getattr(self, name)}")
        if self.tunnel is not None:
            _tunnel_urls.check(self.tunnel, self.remote_port, self.ssh_options, self.public_url)
        elif self.remote_port is not None or self.ssh_options:
            raise ValueError("remote_port= and ssh_options= go with tunnel='ssh://user@host'")
        elif self.public_url is not None:
            _tunnel_urls.prefix(self.public_url)
        # Last: the secret fails (missing_secret) only once the rest is right.
        _set(self, keys=tuple(secret_keys(secret)), ssh_options=tuple(self.ssh_options or ()))


def _int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")


def _set(config: ReceiverConfig, **values: Any) -> None:
    """Normalise fields of a frozen config while it is being made."""
    for name, value in values.items():
        object.__setattr__(config, name, value)
