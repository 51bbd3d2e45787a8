"""Command-line overrides checked before a run starts: typos get the nearest existing key, and eval.py
refuses group swaps that cannot apply to a trained model.

Hydra's own answer to an unknown key is to add it with ``+key=value``, which for a typo
(``trainer.max_step=3``) only moves the failure into the code that receives it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from omegaconf import DictConfig, OmegaConf

from audiolm.errors import ConfigError

UNKNOWN_KEY = re.compile(r"Could not override '([^']+)'")
# Groups that make up a trained model: eval.py rebuilds them from the checkpoint's own config.
MODEL_GROUPS = ("task", "model", "codec", "pattern", "optim")


def _keys(node, prefix: str = "") -> list[str]:
    if not OmegaConf.is_dict(node):
        return [prefix.rstrip(".")]
    out = []
    for key in node:
        if key != "hydra":
            out += _keys(node._get_node(key), f"{prefix}{key}.")
    return out


def nearest_keys(key: str, cfg: DictConfig, n: int = 2) -> list[str]:
    """The config keys closest to ``key`` (for a typo's error message)."""
    keys = _keys(cfg)
    same_parent = [k for k in keys if k.rpartition(".")[0] == key.rpartition(".")[0]]
    return difflib.get_close_matches(key, same_parent, n=n, cutoff=0.6) or difflib.get_close_matches(key, keys, n=n)


def check_overrides(overrides: list[str], config_dir: str, config_name: str) -> None:
    """Compose ``config_name`` with ``overrides``; an unknown key becomes a ConfigError naming the nearest
    existing ones. Sweeps (``-m``) and Hydra's own flags are left to Hydra."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException

    plain = [o for o in overrides if not o.startswith("-") and "=" in o and not o.startswith("hydra")]
    if len(plain) != len(overrides):
        return
    try:
        with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
            compose(config_name=config_name, overrides=plain)
    except ConfigCompositionException as exc:
        found = UNKNOWN_KEY.search(str(exc))
        if found is None:
            return  # Hydra's own message says it best (an unknown option of a group lists the options)
        key = found.group(1).lstrip("+~")
        with initialize_config_dir(config_dir=config_dir, version_base="1.3"):
            base = compose(config_name=config_name, overrides=[o for o in plain if o.split("=")[0] != found.group(1)])
        near = nearest_keys(key, base)
        hint = f"did you mean {' or '.join(near)}? " if near else ""
        raise ConfigError(f"{key} is not a config key; {hint}(to add a new key on purpose, write +{key}=...)") from None


def refuse_model_groups(overrides: Iterable[str]) -> None:
    """eval.py keeps the groups a checkpoint was trained with: swapping one would rebuild another model."""
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key in MODEL_GROUPS:
            raise ConfigError(
                f"eval.py rebuilds the run as it was trained, so `{override}` cannot apply: the "
                f"checkpoint's {key} is fixed. Override keys inside it instead (e.g. "
                f"sampling.temperature=0.8, eval.n_samples=8), or train a new run with {override}"
            )


def unknown_argument(exc: TypeError, valid: Iterable[str], group: str) -> ConfigError | None:
    """A ConfigError for ``TypeError: ... unexpected keyword argument 'x'`` naming the nearest valid one."""
    found = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
    if found is None:
        return None
    near = difflib.get_close_matches(found.group(1), list(valid), n=2)
    hint = f"; did you mean {group}.{near[0]}?" if near else ""
    return ConfigError(f"{group}.{found.group(1)} is not an argument of {group}{hint}")
