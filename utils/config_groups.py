"""Group options on the command line (`algorithm=df_video`, `+recipe=crafter_demo`) checked before Hydra composes:
an unknown option ends in one line listing the valid ones instead of Hydra's search-path dump."""

from pathlib import Path

from utils.typed_config import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configurations"
INTERNAL_GROUPS = ("hydra", "dataset_experiment")  # Hydra's own settings; chosen by the defaults list


def group_options(group: str) -> list[str]:
    """The options of config group `group`: its yaml files, without the suffix."""
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))


def check_group_overrides(arguments: list[str]) -> None:
    """Raise a `ConfigError` for the first `group=option` argument whose option has no yaml file."""
    groups = {p.name for p in CONFIG_DIR.iterdir() if p.is_dir() and p.name not in INTERNAL_GROUPS}
    for argument in arguments:
        key, separator, value = argument.lstrip("+~").partition("=")
        if not separator or key not in groups or value in ("", "null"):
            continue
        valid = group_options(key)
        for option in value.split(","):  # a multirun sweep lists several
            if option not in valid:
                raise ConfigError(key, f"no option {option!r}; choose one of: {', '.join(valid)}")
