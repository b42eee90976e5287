"""Resumable, verified downloads of multi-part tar archives from the Internet Archive (or a mirror of it).

TECO's datasets are published as archive.org items, one per part (`dmlab_dataset_aa` holds `dmlab.tar.partaa`);
the parts concatenated form one tar file. archive.org serves an item's metadata at `<base>/metadata/<item>`
(JSON listing every file's size, md5 and sha1) and its files at `<base>/download/<item>/<file>`; a mirror given
as `dataset.download_url` serves the same paths under its own base URL.

Each part is fetched into `<name>.partial` with HTTP range requests, so an interrupted download (a dropped
connection, a killed run) continues where it stopped; it is renamed to `<name>` only after its size and md5 match
the metadata. Several parts download in parallel under one progress bar. Extraction streams the concatenated
parts into a hidden folder beside the destination and renames it into place at the end, so an interrupted
extraction never leaves a folder that looks complete.
"""

import hashlib
import json
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from threading import Lock

from tqdm.auto import tqdm

from utils.typed_config import ConfigError

CHUNK = 1 << 20
RETRIES = 5
TIMEOUT_S = 60


@dataclass(frozen=True)
class RemoteFile:
    """One part: the archive item holding it, its file name, and the size and md5 the metadata publishes."""

    item: str
    name: str
    size: int
    md5: str


class Source:
    """An archive.org-compatible server: metadata under `/metadata/<item>`, files under `/download/<item>/`."""

    def __init__(self, base_url: str, key: str = "dataset.download_url") -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key

    def url(self, item: str, name: str) -> str:
        return f"{self.base_url}/download/{item}/{name}"

    def describe(self, item: str, name: str) -> RemoteFile:
        """Size and md5 of `name` in `item`, from the item's metadata."""
        url = f"{self.base_url}/metadata/{item}"
        with self.open(url) as response:
            metadata = json.load(response)
        for entry in metadata.get("files", []):
            if entry.get("name") == name:
                return RemoteFile(item, name, int(entry["size"]), entry["md5"])
        raise ConfigError(self.key, f"{url} lists no file {name!r}; is this a mirror of the right items?")

    def open(self, url: str, start: int = 0):
        request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
        try:
            return urllib.request.urlopen(request, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as error:
            raise ConfigError(self.key, f"{url} answered HTTP {error.code} ({error.reason})") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ConfigError(
                self.key, f"cannot reach {url} ({reason}); set {self.key} to a reachable mirror"
            ) from None


def md5sum(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(source: Source, remote: RemoteFile, destination: Path, progress: tqdm, lock: Lock) -> Path:
    """Download `remote` to `destination`, resuming `<destination>.partial`; verify size and md5."""
    if destination.exists():
        return destination
    partial = destination.with_name(destination.name + ".partial")
    url = source.url(remote.item, remote.name)
    for _ in range(RETRIES):
        done = partial.stat().st_size if partial.exists() else 0
        if done >= remote.size:
            break
        try:
            with source.open(url, done) as response, partial.open("ab") as out:
                if done and response.status != 206:  # server ignored the range: start over
                    out.truncate(0)
                    with lock:
                        progress.update(-done)
                while block := response.read(CHUNK):
                    out.write(block)
                    with lock:
                        progress.update(len(block))
        except (OSError, ConnectionError):
            continue  # dropped mid-part: resume from what arrived
    size = partial.stat().st_size if partial.exists() else 0
    if size != remote.size or md5sum(partial) != remote.md5:
        partial.unlink(missing_ok=True)
        raise ConfigError(
            source.key,
            f"{url}: got {size} bytes that do not match the published size {remote.size} and md5 {remote.md5}; "
            "the corrupt file was removed, run again to retry",
        )
    partial.rename(destination)
    return destination


def download_parts(source: Source, parts: Iterable[tuple[str, str]], folder: Path, workers: int = 4) -> list[Path]:
    """Fetch every (item, file name) part into `folder` in parallel under one progress bar; paths in order."""
    folder.mkdir(parents=True, exist_ok=True)
    remotes = [source.describe(item, name) for item, name in parts]
    lock = Lock()
    already = sum(_present_bytes(folder / r.name) for r in remotes)
    with (
        tqdm(total=sum(r.size for r in remotes), initial=already, unit="B", unit_scale=True, desc="download") as bar,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        jobs = [pool.submit(fetch, source, r, folder / r.name, bar, lock) for r in remotes]
        return [job.result() for job in jobs]


def _present_bytes(path: Path) -> int:
    partial = path.with_name(path.name + ".partial")
    return path.stat().st_size if path.exists() else partial.stat().st_size if partial.exists() else 0


class ConcatenatedFiles:
    """A read-only stream over several files back to back (`cat part* |` without the copy)."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = list(paths)
        self.current = None

    def read(self, size: int = -1) -> bytes:
        chunks = []
        while size != 0:
            if self.current is None:
                if not self.paths:
                    break
                self.current = self.paths.pop(0).open("rb")
            block = self.current.read(size)
            if not block:
                self.current.close()
                self.current = None
                continue
            chunks.append(block)
            size = size - len(block) if size > 0 else size
        return b"".join(chunks)


def extract_concatenated_tar(parts: list[Path], member: str, destination: Path) -> None:
    """Extract folder `member` of the tar formed by `parts` to `destination`, which appears only when complete."""
    staging = destination.with_name(f".{destination.name}.extracting")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(fileobj=ConcatenatedFiles(parts), mode="r|") as archive:
        for entry in tqdm(archive, desc=f"extract {destination.name}", unit=" files"):
            archive.extract(entry, staging, filter="data")
    extracted = staging / member
    if not extracted.is_dir():
        raise ConfigError("dataset.save_dir", f"the archive has no folder {member!r}; is it the right dataset?")
    os.replace(extracted, destination)
    shutil.rmtree(staging)


def download_file(url: str, destination: Path, key: str, timeout_s: float = TIMEOUT_S, md5: str | None = None) -> Path:
    """Fetch one file (model weights, a D4RL hdf5) to `destination` through `<destination>.partial`.

    A dropped connection is resumed with a range request (also across runs), the size is checked against the
    server's Content-Length and, with `md5`, the checksum; a mismatching file is removed and refused.
    """
    if destination.exists():
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    total = None
    with tqdm(unit="B", unit_scale=True, desc=destination.name, delay=1.0) as bar:  # no bar for instant failures
        for _ in range(RETRIES):
            done = partial.stat().st_size if partial.exists() else 0
            if total is not None and done >= total:
                break
            request = urllib.request.Request(url, headers={"Range": f"bytes={done}-"} if done else {})
            try:
                with urllib.request.urlopen(request, timeout=timeout_s) as response, partial.open("ab") as out:
                    if done and response.status != 206:  # the server ignored the range: start over
                        out.truncate(0)
                        done = 0
                    total = done + int(response.headers.get("Content-Length") or 0) or None
                    bar.reset(total)
                    bar.update(done)
                    while block := response.read(CHUNK):
                        out.write(block)
                        bar.update(len(block))
            except (urllib.error.URLError, OSError) as error:
                if not partial.exists() or partial.stat().st_size == done:  # nothing arrived: give up
                    raise ConfigError(key, f"cannot download {url} ({getattr(error, 'reason', error)})") from None
            if total is None:
                break
    size = partial.stat().st_size
    if total is not None and size < total:
        raise ConfigError(key, f"download of {url} stopped at {size} of {total} bytes; run again to resume")
    if md5 and (actual := md5sum(partial)) != md5:
        partial.unlink()
        raise ConfigError(key, f"{url} arrived with md5 {actual}, expected {md5}; the file was removed")
    partial.rename(destination)
    return destination
