"""Which URL a receiver gives out, from the kernel's environment and the running servers."""

from __future__ import annotations

from collections.abc import Callable

from elwh_nb._server.urls import TUNNEL_LINE, detect, hook_urls, runtime

SERVER = {
    "pid": 4242,
    "url": "http://localhost:8888/lab-base/",
    "base_url": "/lab-base/",
    "token": "jt_secret_token",
    "port": 8888,
}
ROUTE = "A" * 32


def test_outside_jupyter_there_is_no_context() -> None:
    assert detect(env={}, servers=[SERVER]) is None
    assert detect(env={"JPY_PARENT_PID": "999"}, servers=[SERVER]) is None
    urls = hook_urls(
        None, local_url="http://127.0.0.1:5000/webhook", port=5000, path="/webhook", route_id=None
    )
    assert urls.url == urls.local_url and urls.proxy_url is None and urls.note is None


def test_plain_jupyter_server_found_by_parent_pid() -> None:
    ctx = detect(env={"JPY_PARENT_PID": "4242"}, servers=[{"pid": 1}, SERVER])
    assert ctx is not None
    assert (ctx.base_url, ctx.origin, ctx.origin_is_local, ctx.server_pid) == (
        "/lab-base/",
        "http://localhost:8888",
        True,
        4242,
    )
    urls = hook_urls(
        ctx, local_url="http://127.0.0.1:5000/webhook", port=5000, path="/webhook", route_id=ROUTE
    )
    assert urls.url == f"http://localhost:8888/lab-base/elwh/hook/{ROUTE}"
    assert urls.proxy_url == "http://localhost:8888/lab-base/proxy/5000/webhook"
    assert urls.note is not None and "ELWH_PUBLIC_URL" in urls.note


def test_explicit_public_origin_wins() -> None:
    env = {"JPY_PARENT_PID": "4242", "ELWH_PUBLIC_URL": "https://notebooks.example.org/ignored/path"}
    ctx = detect(env=env, servers=[SERVER])
    assert ctx is not None and ctx.origin == "https://notebooks.example.org" and not ctx.origin_is_local
    given = detect(env=env, servers=[SERVER], public_url="https://arg.example.org")
    assert given is not None and given.origin == "https://arg.example.org"
    urls = hook_urls(ctx, local_url="x", port=1, path="/webhook", route_id=ROUTE)
    assert urls.note is None


def test_jupyterhub_prefix_and_public_url() -> None:
    env = {
        "JPY_PARENT_PID": "4242",
        "JUPYTERHUB_SERVICE_PREFIX": "/hub-base/user/alice/",
        "JUPYTERHUB_PUBLIC_URL": "https://hub.example.com/hub-base/",
        "JUPYTERHUB_API_TOKEN": "hub_api_token",
    }
    ctx = detect(env=env, servers=[SERVER])
    assert ctx is not None and ctx.hub
    assert ctx.base_url == "/hub-base/user/alice/" and ctx.origin == "https://hub.example.com"
    assert ctx.token == "hub_api_token"
    urls = hook_urls(ctx, local_url="x", port=7000, path="/webhook", route_id=ROUTE)
    assert urls.url == f"https://hub.example.com/hub-base/user/alice/elwh/hook/{ROUTE}"
    assert urls.proxy_url == "https://hub.example.com/hub-base/user/alice/proxy/7000/webhook"


def test_jupyterhub_host_and_no_server_file() -> None:
    env = {"JUPYTERHUB_SERVICE_PREFIX": "/user/bob", "JUPYTERHUB_HOST": "https://hub.example.net"}
    ctx = detect(env=env, servers=[])
    assert ctx is not None and ctx.base_url == "/user/bob/" and ctx.origin == "https://hub.example.net"
    assert ctx.server_pid is None  # cannot know if the extension is loaded: proxy URL
    urls = hook_urls(ctx, local_url="x", port=7000, path="/webhook", route_id=None)
    assert urls.url == urls.proxy_url and urls.note is not None and "restart" in urls.note


def test_urls_never_carry_a_token() -> None:
    ctx = detect(env={"JPY_PARENT_PID": "4242"}, servers=[SERVER])
    urls = hook_urls(ctx, local_url="x", port=1, path="/webhook", route_id=ROUTE)
    assert "jt_secret_token" not in f"{urls} {ctx}"


def _importable(*names: str) -> Callable[[str], object]:
    def find_spec(name: str) -> object:
        if name.split(".")[0] not in {n.split(".")[0] for n in names}:
            raise ModuleNotFoundError(name)  # as importlib does when the parent package is missing
        return object() if name in names else None

    return find_spec


def test_colab_and_vs_code_are_recognised() -> None:
    assert runtime(env={}, find_spec=_importable("google.colab")) == "colab"
    assert runtime(env={}, find_spec=_importable("google.protobuf")) is None  # google, but not Colab
    assert runtime(env={}, find_spec=_importable()) is None
    for env in ({"VSCODE_PID": "17"}, {"VSCODE_CWD": "/home/me"}, {"VSCODE_IPC_HOOK_CLI": "/run/x.sock"}):
        assert runtime(env=env, find_spec=_importable()) == "vscode"
    assert runtime(env={"TERM_PROGRAM": "vscode", "VSCODE_PID": ""}, find_spec=_importable()) is None


def test_where_only_a_tunnel_reaches_the_kernel_the_note_gives_the_one_line() -> None:
    local = "http://127.0.0.1:5000/webhook"
    for where, name in (("vscode", "VS Code"), ("colab", "Colab")):
        urls = hook_urls(None, local_url=local, port=5000, path="/webhook", route_id=None, where=where)
        assert urls.url == local and urls.note is not None
        assert name in urls.note and TUNNEL_LINE in urls.note and "rx.tunnel_help()" in urls.note
    # Colab runs a Jupyter server of its own, which the internet cannot reach: the same note, alone.
    ctx = detect(env={"JPY_PARENT_PID": "4242"}, servers=[SERVER])
    urls = hook_urls(ctx, local_url=local, port=5000, path="/webhook", route_id=None, where="colab")
    assert urls.note is not None and urls.note.startswith("On Colab") and "restart" not in urls.note
