"""Composable configs: ``extends`` chains and ``--set`` items, then :func:`sim.config.parse_scenario`.

A config may ``extends = "base.toml"`` (a path relative to itself): its tables are merged
key by key over the base's, lists (``[[operators]]``, ``tier_mix``) replace the base's, and
chains are allowed but a cycle is refused. Every path-typed value (by the schema) is made
absolute against the folder of the file that wrote it, so a config that extends the shipped
one works from any folder. ``--set section.key=value`` items (:func:`apply_sets`) change one
key each, typed by the schema; an error in one names ``--set`` and the key.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import typing
from pathlib import Path

from .config import SECTIONS, Operator, Scenario, parse_scenario
from .errors import ConfigError

__all__ = ["load_scenario", "load_config_data", "apply_sets", "scenario_from_dict"]


def _read_toml(path: Path, key=None) -> dict:
    if not path.is_file():
        raise ConfigError(path, None, "config file not found")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"not valid TOML ({exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(path, None, "not valid TOML (not UTF-8 text)") from None
    except RecursionError:
        raise ConfigError(path, None, "not valid TOML for a scenario (tables or arrays nested too deeply)") from None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read the config ({exc.strerror or exc.__class__.__name__})") from None


def _absolute_paths(data: dict, base: Path) -> dict:
    """``data`` with every path-typed value (by the schema) made absolute against ``base``.

    So a value keeps pointing at the file its author meant wherever the config that
    inherits it lives. Values of the wrong type are left for validation to report.
    """

    def walk(d, cls):
        if not isinstance(d, dict) or not dataclasses.is_dataclass(cls):
            return d
        hints = typing.get_type_hints(cls)
        out = dict(d)
        for k, v in d.items():
            tp = hints.get(k)
            if tp is None:
                continue
            if tp is Path and isinstance(v, str) and v:
                p = Path(v).expanduser()
                out[k] = str(p if p.is_absolute() else Path(os.path.normpath(base / p)))
            elif typing.get_origin(tp) is tuple and typing.get_args(tp)[0] is Path and isinstance(v, list):
                out[k] = [str(Path(os.path.normpath(base / Path(x).expanduser()))) if isinstance(x, str) and x
                          else x for x in v]
            elif dataclasses.is_dataclass(tp):
                out[k] = walk(v, tp)
        return out

    out = dict(data)
    for name, cls in SECTIONS.items():
        if name == "operators" and isinstance(data.get(name), list):
            out[name] = [walk(op, Operator) for op in data[name]]
        elif name in data:
            out[name] = walk(data[name], cls)
    return out


_ALTERNATIVES = {
    "deployment": (("sites", "sites_per_10k"),),
    "broadband": (("gigabit_households", "gigabit_household_share"), ("fibre_households", "fibre_household_share"),
                  ("fibre_subscribers", "fibre_subscriber_share")),
}
"""Keys that say one thing two ways: a file (or ``--set``) that gives one drops the other it inherits."""


def _deep_merge(base: dict, over: dict, section: str = "") -> dict:
    """``over`` merged into ``base``: tables merge key by key, anything else (lists too) is replaced.

    Of two alternative keys (:data:`_ALTERNATIVES`), the one ``over`` gives replaces the
    other in ``base`` (a config extending the Shanghai one may give shares of households
    instead of its citywide totals).
    """
    out = dict(base)
    for a, b in _ALTERNATIVES.get(section, ()):
        for mine, other in ((a, b), (b, a)):
            if mine in over and other not in over:
                out.pop(other, None)
    for k, v in over.items():
        sub = k if not section else ""
        out[k] = _deep_merge(out[k], v, sub) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config_data(path, _chain: tuple = ()) -> dict:
    """A config file's TOML with its ``extends`` chain merged in and paths made absolute.

    ``extends = "base.toml"`` (relative to the extending file) deep-merges this file's
    tables over the base's; lists (``[[operators]]``, ``tier_mix``) are replaced as a
    whole. A chain that comes back to a file is refused.
    """
    path = Path(path)
    data = _read_toml(path)
    data = _absolute_paths(data, path.parent.absolute())
    ext = data.pop("extends", None)
    if ext is None:
        return data
    if not isinstance(ext, str) or not ext:
        raise ConfigError(path, "extends", f"expected the path of a config file (string), got {ext!r}")
    parent = Path(ext).expanduser()
    parent = Path(os.path.normpath(path.parent / parent)) if not parent.is_absolute() else parent
    chain = (*_chain, Path(os.path.normpath(path.absolute())))
    if Path(os.path.normpath(parent.absolute())) in chain:
        names = " -> ".join(p.name for p in (*chain, parent))
        raise ConfigError(path, "extends", f"expected a chain without cycles, got {names}")
    if not parent.is_file():
        raise ConfigError(path, "extends", f"expected an existing config file, got {ext!r} (not found: {parent})")
    return _deep_merge(load_config_data(parent, chain), data)


def _field_type(path_parts: list[str], key: str):
    """The schema type of a dotted key (``deployment.sites.cmcc``, ``operators[0].mobile_share``)."""
    m = re.fullmatch(r"([a-z_]+)(?:\[(\d+)\])?", path_parts[0])
    if not m or m.group(1) not in SECTIONS:
        raise ConfigError("--set", key, f"unknown section (expected one of: {', '.join(SECTIONS)})")
    cls = SECTIONS[m.group(1)]
    tp = cls
    for i, part in enumerate(path_parts[1:], 1):
        pm = re.fullmatch(r"([A-Za-z0-9_-]+)(?:\[(\d+)\])?", part)
        if pm is None:
            raise ConfigError("--set", key, f"expected a dotted key like radio.k_sites, got {part!r}")
        if typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
            continue
        if not dataclasses.is_dataclass(tp):
            raise ConfigError("--set", key, f"expected a key path ending at {'.'.join(path_parts[:i])}")
        hints = typing.get_type_hints(tp)
        if pm.group(1) not in hints or pm.group(1) in ("source_path", "overrides"):
            known = ", ".join(n for n in hints if n not in ("source_path", "overrides"))
            raise ConfigError("--set", key, f"unknown key {pm.group(1)!r} (expected one of: {known})")
        tp = hints[pm.group(1)]
        if pm.group(2) is not None and typing.get_origin(tp) is tuple:
            tp = typing.get_args(tp)[0]
    return tp


def _set_value(tp, text: str):
    """The value of ``--set key=text`` for a field of type ``tp``: a TOML value, or a bare string for strings."""
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        # a bare word: a string (a comma list for a list of strings); validation names what a number key expected
        is_list = typing.get_origin(tp) is tuple and typing.get_args(tp)[0] in (str, Path)
        value = [t.strip() for t in text.split(",") if t.strip()] if is_list else text
    if tp in (str, Path) and not isinstance(value, str):
        value = text
    return value


def _set_pairs(sets) -> list[tuple[str, object]]:
    """``--set`` items as ``(key, value)`` pairs, values typed by the schema (paths made absolute)."""
    out = []
    for item in sets or ():
        if isinstance(item, str):
            if "=" not in item:
                raise ConfigError("--set", item, "expected section.key=value")
            key, text = (s.strip() for s in item.split("=", 1))
            tp = _field_type(key.split("."), key) if len(key.split(".")) >= 2 and all(key.split(".")) else None
            if tp is None:
                raise ConfigError("--set", key, "expected section.key=value (e.g. radio.k_sites=16)")
            value = _set_value(tp, text)
            if tp is Path and isinstance(value, str) and value:
                p = Path(value).expanduser()
                value = str(p if p.is_absolute() else Path(os.path.normpath(Path.cwd() / p)))
            out.append((key, value))
        else:
            key, value = item
            out.append((str(key), value))
    return out


def apply_sets(data: dict, sets, base: Path | None = None) -> dict:
    """``data`` with ``--set section.key=value`` items applied (each ``"key=value"`` or a ``(key, value)`` pair).

    Keys are checked against the schema (an unknown key is a one-line error naming it);
    string values are taken as they come, others parsed as TOML values and then validated
    with the rest of the config. Relative paths resolve against ``base`` (the working folder).
    """
    out = _deep_merge(data, {})
    for key, value in _set_pairs(sets):
        parts = key.split(".")
        _field_type(parts, key)
        if base is not None and isinstance(value, str) and _field_type(parts, key) is Path and \
                not Path(value).is_absolute():
            value = str(Path(os.path.normpath(base / value)))
        node = out
        for j, part in enumerate(parts[:-1]):
            pm = re.fullmatch(r"([A-Za-z0-9_-]+)(?:\[(\d+)\])?", part)
            name, idx = pm.group(1), pm.group(2)
            if idx is not None:
                seq = node.get(name)
                if not isinstance(seq, list) or int(idx) >= len(seq):
                    n = len(seq) if isinstance(seq, list) else 0
                    raise ConfigError("--set", key, f"expected an index below {n} for "
                                      f"{'.'.join(parts[:j])}{'.' if j else ''}{name}, got {idx}")
                seq = [dict(x) if isinstance(x, dict) else x for x in seq]
                node[name] = seq
                node = seq[int(idx)]
            else:
                child = node.get(name)
                node[name] = dict(child) if isinstance(child, dict) else {}
                node = node[name]
        node[parts[-1]] = value
        if len(parts) == 2:
            for a, b in _ALTERNATIVES.get(parts[0], ()):
                if parts[1] in (a, b):
                    node.pop(b if parts[1] == a else a, None)
    return out


def scenario_from_dict(data: dict, base_dir: Path, sets=()) -> Scenario:
    """A scenario from a dict shaped like the TOML (relative paths and ``extends`` against ``base_dir``)."""
    base_dir = Path(base_dir).absolute()
    data = _absolute_paths(dict(data), base_dir)
    ext = data.pop("extends", None)
    if ext is not None:
        parent = Path(ext) if Path(ext).is_absolute() else base_dir / ext
        data = _deep_merge(load_config_data(parent), data)
    return _finish(data, base_dir / "<dict>", sets)


def load_scenario(path, sets=()) -> Scenario:
    """Read and validate a scenario TOML file (with its ``extends`` chain and ``--set`` items)."""
    path = Path(path)
    return _finish(load_config_data(path), path, sets)


def _finish(data: dict, path: Path, sets) -> Scenario:
    """Apply ``--set`` items to the merged data and validate it (an error in a set key names ``--set``)."""
    if sets:
        pairs = _set_pairs(sets)
        data = apply_sets(data, pairs)
        try:
            return dataclasses.replace(parse_scenario(data, path), overrides=tuple(pairs))
        except ConfigError as exc:
            keys = [s.split("=", 1)[0].strip() if isinstance(s, str) else s[0] for s in sets]
            if exc.field and any(exc.field == k or exc.field.startswith(k + ".") or exc.field.startswith(k + "[")
                                 for k in keys):
                raise ConfigError("--set", exc.field, exc.message) from None
            raise
    return parse_scenario(data, path)
