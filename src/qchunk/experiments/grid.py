"""Grids of training runs: parsing the sweep's lists and ``key=value`` settings, and expanding them into runs.

A sweep is the product ``envs x agents x variants x seeds``. A *variant* is a named set of settings
(``h10`` = ``{"horizon": 10}``); each run gets its own directory ``OUT/<env>/<agent>[-<variant>]/seed<k>``.

Lists, seeds and counts follow the command line's one grammar (:mod:`qchunk.grammar`): ``--envs a,b``,
``--envs a b``, ``--envs a --envs b`` and an unexpanded brace pattern ``cube-double-play-singletask-task{1..5}-v0``
all work; seeds accept ``0-3``, ``0..3``, ``{0..3}`` and ``0,2``. A bare domain name (``cube-double``) means its
five tasks.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from qchunk.errors import QchunkError, did_you_mean
from qchunk.grammar import flatten, parse_count, parse_names

#: Settings a sweep manages itself; ``--set`` may not change them.
MANAGED_KEYS = {"resume": "the sweep resumes interrupted runs itself",
                "progress": "runs in a sweep never show a progress bar",
                "agent": "use --agents", "env": "use --envs", "seed": "use --seeds",
                "overrides": "set agent fields by name, e.g. --set horizon=10"}

#: Short names of settings in variant directory names and plot labels.
SHORT_NAMES = {"horizon": "h", "num_critics": "K", "utd": "UTD", "num_samples": "N", "alpha": "alpha"}



# ----------------------------------------------------------------------------------------------- lists
def parse_envs(values: Iterable[str] | Iterable[Iterable[str]]) -> list[str]:
    """Single-task names; a bare OGBench domain name (``cube-double``) stands for its tasks 1..5, and
    ``robomimic`` for lift, can and square (``lift-mh-low_dim`` ...).

    Raises:
        QchunkError: an unknown name or a dataset name without a task.
    """
    from qchunk.tasks import DOMAINS, ROBOMIMIC_TASKS, get_task

    envs: list[str] = []
    for name in parse_names(values):
        if name in DOMAINS:
            names = [DOMAINS[name].task_name(t) for t in range(1, 6)]
        elif name == "robomimic":
            names = list(ROBOMIMIC_TASKS)
        else:
            names = [name]
        for env in names:
            spec = get_task(env)
            if not spec.singletask or (spec.task is None and spec.benchmark == "ogbench"):
                example = spec.domain.task_name(2) if spec.benchmark == "ogbench" else "lift-mh-low_dim"
                raise QchunkError(f"--envs needs single-task names such as {example} "
                                  f"(or the domain name {spec.domain.name!r} for tasks 1..5), got {env!r}")
            if env not in envs:
                envs.append(env)
    return envs


# --------------------------------------------------------------------------------------- settings
def settable_fields() -> dict[str, Any]:
    """Every key ``--set`` accepts, mapped to its type: TrainConfig fields and agent override fields."""
    from qchunk.training.config import AgentOverrides, TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    out = {f.name: hints[f.name] for f in dataclasses.fields(TrainConfig) if f.name not in MANAGED_KEYS}
    agent_hints = typing.get_type_hints(AgentOverrides)
    out.update({f.name: agent_hints[f.name] for f in dataclasses.fields(AgentOverrides)})
    return out


def agent_fields() -> set[str]:
    """Names of the agent fields (they go into ``TrainConfig.overrides``)."""
    from qchunk.training.config import AgentOverrides

    return {f.name for f in dataclasses.fields(AgentOverrides)}


def _is_optional(tp) -> tuple[bool, Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) < len(typing.get_args(tp)):
            return True, args[0] if len(args) == 1 else typing.Union[tuple(args)]  # noqa: UP007
    return False, tp


def parse_value(key: str, text: str, tp: Any) -> Any:
    """Convert ``text`` to a value of type ``tp`` (int, float, bool, str, Literal, tuple[int, ...], optional).

    Raises:
        QchunkError: the text does not fit the type (one line naming the key).
    """
    optional, tp = _is_optional(tp)
    raw = text.strip()
    if optional and raw.lower() in ("none", "null", ""):
        return None
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if raw not in choices:
            raise QchunkError(f"--set {key}={text}: unknown value {raw!r}{did_you_mean(raw, map(str, choices))}; "
                              f"choose one of: {', '.join(map(str, choices))}")
        return raw
    try:
        if tp is bool:
            low = raw.lower()
            if low in ("true", "1", "yes", "on"):
                return True
            if low in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if tp is int:
            return parse_count(raw, f"--set {key}")  # 1e6, 1_000_000
        if tp is float:
            return float(raw)
        if tp is str:
            return raw
        if origin is tuple:
            item = typing.get_args(tp)[0]
            parts = [p for p in re.split(r"[\s,x]+", raw.strip("[]()")) if p]
            if not parts:
                raise ValueError
            return tuple(parse_value(key, p, item) for p in parts)
    except QchunkError:
        raise
    except (ValueError, TypeError):
        pass
    else:
        return raw
    kind = {bool: "true or false", int: "an integer", float: "a number"}.get(tp, "e.g. 256,256" if origin is tuple
                                                                            else str(tp))
    raise QchunkError(f"--set {key}={text}: expected {kind}")


def canonical_key(key: str) -> str:
    """``offline-steps`` -> ``offline_steps``."""
    return key.strip().replace("-", "_")


def check_key(key: str, fields: Mapping[str, Any] | None = None) -> str:
    """Validate a settings key (one-line QchunkError for unknown or sweep-managed keys)."""
    fields = settable_fields() if fields is None else fields
    key = canonical_key(key)
    if key in MANAGED_KEYS:
        raise QchunkError(f"--set {key}: not settable in a sweep ({MANAGED_KEYS[key]})")
    if key not in fields:
        raise QchunkError(f"unknown --set key {key!r}{did_you_mean(key, fields)}; keys are TrainConfig and agent "
                          "fields (see qchunk train --help)")
    return key


def parse_settings(assignments: Iterable[str] | Iterable[Iterable[str]]) -> dict[str, Any]:
    """``["preset=quick", "actor_hidden_dims=32,32"]`` -> typed dict. Later assignments win.

    Raises:
        QchunkError: missing ``=``, unknown key, or a value that does not fit the field's type.
    """
    fields = settable_fields()
    out: dict[str, Any] = {}
    for item in flatten(assignments):
        if "=" not in item:
            raise QchunkError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        key = check_key(key, fields)
        out[key] = parse_value(key, text, fields[key])
    return out


def parse_axes(assignments: Iterable[str] | Iterable[Iterable[str]]) -> dict[str, list[Any]]:
    """``--vary key=v1,v2`` -> ``{key: [v1, v2]}`` (typed; tuple fields separate values with ``;``)."""
    fields = settable_fields()
    out: dict[str, list[Any]] = {}
    for item in flatten(assignments):
        if "=" not in item:
            raise QchunkError(f"--vary expects key=v1,v2,..., got {item!r}")
        key, text = item.split("=", 1)
        key = check_key(key, fields)
        is_tuple = typing.get_origin(_is_optional(fields[key])[1]) is tuple
        parts = text.split(";") if is_tuple else parse_names([text])
        values = [parse_value(key, p, fields[key]) for p in parts if p.strip()]
        if not values:
            raise QchunkError(f"--vary {key}= needs at least one value")
        out[key] = values
    return out


def format_value(value: Any) -> str:
    """Compact text of a setting value for directory names and labels (``(32, 32)`` -> ``32x32``)."""
    if isinstance(value, (tuple, list)):
        return "x".join(format_value(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def variant_name(settings: Mapping[str, Any]) -> str:
    """Directory-safe name of a variant: ``{"num_critics": 10, "utd": 5}`` -> ``K10-UTD5``."""
    parts = [f"{SHORT_NAMES.get(k, k)}{format_value(v)}" for k, v in settings.items()]
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", "-".join(parts))


# --------------------------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class Variant:
    """A named set of settings applied on top of the sweep's fixed settings."""

    name: str
    """Directory suffix (``h10``); empty for the plain agent."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """Settings of this variant (``{"horizon": 10}``)."""


def variants_from_axes(axes: Mapping[str, Sequence[Any]]) -> list[Variant]:
    """The product of ``--vary`` axes as variants (one plain variant when there are no axes)."""
    import itertools

    if not axes:
        return [Variant("")]
    keys = list(axes)
    return [Variant(variant_name(dict(zip(keys, combo, strict=True))), dict(zip(keys, combo, strict=True)))
            for combo in itertools.product(*(axes[k] for k in keys))]


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: where it lives and the settings that make its :class:`TrainConfig`."""

    env: str
    agent: str
    seed: int
    variant: str = ""
    """Variant name (part of the directory name); empty for none."""
    settings: Mapping[str, Any] = field(default_factory=dict)
    """All settings beyond env/agent/seed: the sweep's fixed ones, then the variant's."""

    @property
    def label(self) -> str:
        """``agent`` or ``agent-variant``: the directory under the env, and the run's name in tables."""
        return f"{self.agent}-{self.variant}" if self.variant else self.agent

    @property
    def rel_dir(self) -> Path:
        """Run directory relative to the sweep directory: ``<env>/<agent>[-<variant>]/seed<k>``."""
        return Path(self.env) / self.label / f"seed{self.seed}"

    def config(self, **extra: Any):
        """The run's :class:`~qchunk.training.TrainConfig` (``extra``: more TrainConfig fields)."""
        from qchunk.training.config import AgentOverrides, TrainConfig

        names = agent_fields()
        settings = {**self.settings, **extra}
        if isinstance(settings.get("extra_data"), str):  # a template such as ".../{env}/qc/seed{seed}"
            settings["extra_data"] = settings["extra_data"].format(env=self.env, seed=self.seed, agent=self.agent)
        agent = {k: v for k, v in settings.items() if k in names}
        train = {k: v for k, v in settings.items() if k not in names}
        try:
            return TrainConfig(agent=self.agent, env=self.env, seed=self.seed, overrides=AgentOverrides(**agent),
                               **train)
        except TypeError as e:
            raise QchunkError(f"bad settings for {self.rel_dir}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (for the sweep manifest)."""
        return {"dir": str(self.rel_dir), "env": self.env, "agent": self.agent, "seed": self.seed,
                "variant": self.variant,
                "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.settings.items()}}


def expand_grid(envs: Sequence[str], agents: Sequence[str], seeds: Sequence[int],
                settings: Mapping[str, Any] | None = None, variants: Sequence[Variant] = (Variant(""),)
                ) -> list[RunSpec]:
    """All runs of ``envs x agents x variants x seeds`` (in that nesting order). Agents that learn online from
    scratch (the offline data joins their batches; :attr:`qchunk.agents.registry.AgentSpec.online_only`) drop an
    ``offline_steps`` setting: they always run 0 offline steps, so it applies to the offline-to-online agents."""
    from qchunk.agents.registry import agent_specs

    online_only = {s.name for s in agent_specs() if s.online_only}
    settings = dict(settings or {})
    for v in variants:
        clash = sorted(set(v.settings) & set(settings))
        if clash:
            raise QchunkError(f"{clash[0]} is varied by the grid (variant {v.name}); drop it from --set")
    def for_agent(agent: str, values: Mapping[str, Any]) -> dict[str, Any]:
        if agent in online_only:
            return {k: v for k, v in values.items() if k != "offline_steps"}
        return dict(values)

    return [RunSpec(env, agent, seed, v.name, for_agent(agent, {**settings, **v.settings}))
            for env in envs for agent in agents for v in variants for seed in seeds]
