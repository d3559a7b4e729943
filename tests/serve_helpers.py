"""A real ``jtcse serve`` app on 127.0.0.1 in a thread (the in-process twin of the CLI), and small clients."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from jtcse.model.format import MemberSpec, ModelSpec, write_spec
from jtcse.serve.app import create_app
from jtcse.serve.config import ServeConfig
from jtcse.serve.models import default_loader
from jtcse.serve.server import bind, make_server

START_TIMEOUT_S = 120.0
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


@contextlib.contextmanager
def running_server(
    config: ServeConfig, loader: Any = default_loader, wait_ready: bool = True
) -> Iterator[str]:
    """Serve ``config`` on a free port of 127.0.0.1; yields the base URL; stops the server afterwards."""
    app = create_app(config, loader=loader)
    sock = bind("127.0.0.1", 0)
    server = make_server(app, "127.0.0.1", 0, drain_timeout_s=5, announce=False)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
            time.sleep(0.02)
        if wait_ready:
            wait_healthy(url, app)
        yield url
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def start_cli(*args: str) -> tuple[subprocess.Popen, str]:
    """``jtcse serve ARGS`` as a subprocess on a free port of 127.0.0.1; returns it and its base URL."""
    cmd = [sys.executable, "-m", "jtcse", "serve", "--host", "127.0.0.1", "--port", "0", "--device", "cpu"]
    proc = subprocess.Popen(
        [*cmd, *args], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=ENV
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    assert proc.stderr is not None
    for line in proc.stderr:
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if match:
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
            return proc, match.group(1)
        assert time.monotonic() < deadline
    raise AssertionError(f"the server did not start (exit {proc.wait(10)})")


def wait_healthy(url: str, app: Any = None, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app is not None and app.state.serve.load_error is not None:
            raise app.state.serve.load_error
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        time.sleep(0.05)
    raise AssertionError(f"{url} did not become healthy in {timeout} s")


def metric(url: str, name: str) -> float:
    """One unlabelled sample of /metrics (0 when absent)."""
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def make_twin(root: Path, tower_a: Path, tower_b: Path) -> Path:
    shutil.copytree(tower_a, root / "tower_a")
    shutil.copytree(tower_b, root / "tower_b")
    write_spec(root, ModelSpec("twin", [MemberSpec("tower_a"), MemberSpec("tower_b")], method="jtcse"))
    return root


def make_ensemble(root: Path, twin: Path, other: Path) -> Path:
    """0.3 * twin tower + 0.7 * avg(other): two tokenizer groups, poolers of their own (JTCSE-UC's shape)."""
    members = [
        MemberSpec(str(twin), weight=0.3, external=True),  # stored elsewhere on purpose
        MemberSpec(str(other), pooler="avg", weight=0.7, external=True),
    ]
    write_spec(root, ModelSpec(kind="ensemble", members=members))
    return root
