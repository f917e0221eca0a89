"""Helpers of the zoo / data-fetch tests: a local HTTP server on 127.0.0.1 (ephemeral port) that
counts requests, checkpoint and archive builders from the manifests, and an isolated cache.

No test reaches the internet: every URL points at this server or at a port nothing listens on.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import threading
import zipfile
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
MANIFESTS = SHARED / "data" / "checkpoint_manifests"


class FileServer:
    """Serves ``files[path] = bytes`` (``path`` without the leading ``/``); ``truncate[path] = n``
    announces ``n`` more bytes than it sends, then closes. ``requests`` counts GETs per path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncate: dict[str, int] = {}
        self.requests: Counter = Counter()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = unquote(urlsplit(self.path).path).lstrip("/")
                server.requests[path] += 1
                body = server.files.get(path)
                if body is None:
                    self.send_error(404, "not found")
                    return
                extra = server.truncate.get(path, 0)
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body) + extra))
                self.end_headers()
                self.wfile.write(body)
                if extra:
                    self.close_connection = True

            def log_message(self, *args) -> None:  # quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


def dead_url(path: str = "file.bin") -> str:
    """A URL on 127.0.0.1 where nothing listens (a port bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{path}"


@pytest.fixture
def zoo_env(tmp_path, monkeypatch):
    """An empty cache ($WSOL_CACHE), torch hub ($TORCH_HOME) and no mirror, all under tmp_path."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("WSOL_CACHE", str(cache))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("WSOL_MIRROR", raising=False)
    return cache


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ------------------------------------------------------------------------------ builders

TINY_WIDTHS = [4, 4, 4, 4, 4]


def tiny_state_dict(num_classes: int = 3, seed: int = 0) -> dict:
    import torch

    from wsol.models import create_model

    torch.manual_seed(seed)
    return create_model("small_cnn", num_classes, widths=TINY_WIDTHS).state_dict()


def checkpoint_bytes(obj) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def tiny_cutmix_checkpoint(num_classes: int = 3, seed: int = 0) -> bytes:
    """A small_cnn saved as CutMix-PyTorch does (``module.`` keys in a dict with best_err1)."""
    sd = {f"module.{k}": v for k, v in tiny_state_dict(num_classes, seed).items()}
    return checkpoint_bytes(
        {
            "epoch": 300,
            "arch": "small",
            "state_dict": sd,
            "best_err1": 21.4,
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]},
        }
    )


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def manifest_checkpoint(name: str) -> bytes:
    """The manifest's checkpoint in its layout, every tensor a zero scalar expanded to its shape
    (same names, shapes and dtypes; a small file)."""
    import torch

    manifest = json.loads((MANIFESTS / f"{name}.json").read_text())

    def zeros(key: str, shape: list[int]):
        dtype = torch.long if key.endswith("num_batches_tracked") else torch.float32
        return torch.zeros((), dtype=dtype).expand(shape)

    sd = {k: zeros(k, s) for k, s in manifest["state_dict_keys"].items()}
    return checkpoint_bytes({"epoch": 300, "arch": "resnet", "state_dict": sd, "best_err1": 21.4, "optimizer": {}})


def tiny_entry(
    name: str,
    url: str,
    filename: str,
    member: str | None = None,
    sha: str | None = None,
    kind: str = "download",
    num_classes: int = 3,
):
    from wsol.zoo.catalog import Published, ZooEntry

    return ZooEntry(
        name=name,
        arch="small_cnn",
        arch_options={"widths": TINY_WIDTHS},
        num_classes=num_classes,
        augmentation="none",
        repository="test/tiny",
        paper="a test",
        published=Published(top1_err=50.0),
        url=url,
        filename=filename,
        member=member,
        sha256=sha,
        kind=kind,
        torchvision_weights="Tiny.V1" if kind == "torchvision" else None,
    )


def register(monkeypatch, entry) -> None:
    from wsol.zoo.catalog import ZOO

    monkeypatch.setitem(ZOO._items, entry.name, entry)
    monkeypatch.setitem(ZOO._help, entry.name, "test entry")
