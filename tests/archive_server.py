"""A local stand-in for archive.org on 127.0.0.1: item metadata, range requests, and connections that drop.

`publish_teco_archive` builds a tiny dataset in TECO's true layout (a tar cut into parts, one item per part, with
the metadata JSON archive.org serves); `ArchiveServer` serves a folder with HTTP range support and can cut the
first response for a file after a number of bytes, like a flaky source.
"""

import hashlib
import io
import json
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np


class ArchiveServer:
    """Serves `root` on 127.0.0.1; `drop_after[path] = n` cuts the first response for `path` after n bytes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.drop_after: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Range")))
                file = server.root / self.path.lstrip("/")
                if not file.is_file():
                    self.send_error(404)
                    return
                data = file.read_bytes()
                start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                cut = server.drop_after.pop(self.path, None)
                self.wfile.write(data[start:] if cut is None else data[start : start + cut])
                if cut is not None:
                    self.wfile.flush()
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "ArchiveServer":
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def dmlab_episode(rng: np.random.Generator, length: int) -> dict[str, np.ndarray]:
    return {
        "video": rng.integers(0, 256, (length, 64, 64, 3), dtype=np.uint8),
        "actions": rng.integers(0, 3, length),
    }


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def tar_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def publish_teco_archive(
    root: Path, archive_name: str, item_prefix: str, suffixes: tuple[str, ...], files: dict[str, bytes]
) -> dict[str, bytes]:
    """Write `files` (paths under `<archive_name>/`) as a tar cut into len(suffixes) parts, archive.org style.

    Returns {part file name: bytes}; the part of item `<item_prefix><s>` sits at `download/<item>/<name>` and its
    metadata (size, md5, sha1) at `metadata/<item>`.
    """
    data = tar_bytes({f"{archive_name}/{name}": content for name, content in files.items()})
    size = -(-len(data) // len(suffixes))
    parts = {}
    for i, suffix in enumerate(suffixes):
        item, name = f"{item_prefix}{suffix}", f"{archive_name}.tar.part{suffix}"
        part = data[i * size : (i + 1) * size]
        (root / "download" / item).mkdir(parents=True, exist_ok=True)
        (root / "download" / item / name).write_bytes(part)
        entry = {
            "name": name,
            "source": "original",
            "size": str(len(part)),
            "md5": hashlib.md5(part).hexdigest(),
            "sha1": hashlib.sha1(part).hexdigest(),
        }
        (root / "metadata").mkdir(parents=True, exist_ok=True)
        (root / "metadata" / item).write_text(json.dumps({"files": [entry, {"name": f"{item}_meta.xml"}]}))
        parts[name] = part
    return parts
