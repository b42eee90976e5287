"""Pretrained weights for evaluation metrics: a local file named in the config, else a download into a cache.

A config value that starts with `http://` or `https://` is downloaded once into `cache_dir` (resuming an
interrupted download) and reused from there; any other value is a local path. `None` means unavailable.
"""

import urllib.parse
from pathlib import Path

from datasets.download import download_file
from utils.typed_config import ConfigError


def resolve_weights(key: str, value: str, cache_dir: Path, timeout_s: float = 20.0) -> Path:
    """The local file behind `value`; raises `ConfigError` naming `key` when it is missing or cannot be fetched."""
    if not value.startswith(("http://", "https://")):
        path = Path(value).expanduser()
        if not path.is_file():
            raise ConfigError(key, f"no weights file at {path}")
        return path
    name = Path(urllib.parse.urlparse(value).path).name or "weights"
    cached = cache_dir.expanduser() / name
    if cached.is_file():
        return cached
    return download_file(value, cached, key, timeout_s)
