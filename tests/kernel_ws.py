"""Run code in a kernel of a (remote) Jupyter server through its REST and websocket APIs."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timezone

import httpx
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


class RemoteKernel:
    """A kernel started through ``<server>/api/kernels``, driven over its websocket."""

    def __init__(self, server_url: str, headers: dict[str, str], kernel_id: str | None = None) -> None:
        """Start a kernel, or drive the running one ``kernel_id`` (a notebook's, say)."""
        self.server_url = server_url.rstrip("/") + "/"
        self.headers = headers
        if kernel_id is None:
            r = httpx.post(
                self.server_url + "api/kernels", json={"name": "python3"}, headers=headers, timeout=60
            )
            r.raise_for_status()
            kernel_id = r.json()["id"]
        self.kernel_id = kernel_id
        self.session = uuid.uuid4().hex
        self.transcript: list[str] = []  # every message answering our requests, as received

    def run(self, code: str, timeout: float = 120) -> str:
        """Execute ``code``; return what it printed. A kernel-side error raises AssertionError."""
        return asyncio.run(asyncio.wait_for(self._run(code), timeout))

    async def _run(self, code: str) -> str:
        ws_url = self.server_url.replace("http", "ws", 1) + f"api/kernels/{self.kernel_id}/channels"
        conn = await websocket_connect(HTTPRequest(ws_url, headers=self.headers))
        msg_id = uuid.uuid4().hex
        conn.write_message(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "username": "test",
                        "session": self.session,
                        "msg_type": "execute_request",
                        "version": "5.3",
                        "date": datetime.now(timezone.utc).isoformat(),
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        out: list[str] = []
        try:
            while True:
                raw = await conn.read_message()
                if raw is None:
                    raise AssertionError("the kernel's websocket closed")
                msg = json.loads(raw)
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                self.transcript.append(raw if isinstance(raw, str) else raw.decode("latin-1"))
                kind = msg["msg_type"]
                if kind == "stream":
                    out.append(msg["content"]["text"])
                elif kind == "execute_result":
                    out.append(msg["content"]["data"].get("text/plain", ""))
                elif kind == "error":
                    raise AssertionError("kernel error: " + "\n".join(msg["content"]["traceback"]))
                elif kind == "status" and msg["content"]["execution_state"] == "idle":
                    return "".join(out)
        finally:
            conn.close()

    def shutdown(self) -> None:
        httpx.delete(self.server_url + f"api/kernels/{self.kernel_id}", headers=self.headers, timeout=30)
