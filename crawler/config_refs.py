"""Ids in ``patrol.yaml`` that must be unique or must exist, each problem named at its field.

The checks read only ids, so they run on the validated config and also, when another
setting of the file is wrong (a target missing its ``name``), on the YAML as read: a
duplicate target id or a job naming an unknown target is then reported together with
the other errors instead of only after they are fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crawler.config_channels import pseudo_target
from crawler.config_yaml import unknown_id

LISTS = {("targets",): "target", ("channels",): "channel", ("sources",): "source", ("schedules", "jobs"): "job"}
"""Lists whose entries have an ``id``, and what an entry of each is called."""
SPIDER_LISTS = {"site_patrol": ("targets",), "ad_channel": ("channels",), "opinion": ("sources",)}
"""Which list a job's ``targets`` name, by the job's spider."""


@dataclass
class Refs:
    """The ids of a config: per list, every entry's id (None where it has none); each job's
    spider and targets; the keys of ``alerts.targets``."""

    ids: dict[tuple, list[str | None]] = field(default_factory=dict)
    jobs: list[tuple[str | None, list]] = field(default_factory=list)
    alert_targets: list = field(default_factory=list)


def from_config(config) -> Refs:
    """The ids of a validated :class:`crawler.config.PatrolConfig`."""
    lists = {("targets",): config.targets, ("channels",): config.channels, ("sources",): config.sources,
             ("schedules", "jobs"): config.schedules.jobs}
    return Refs(ids={path: [item.id for item in items] for path, items in lists.items()},
                jobs=[(job.spider, list(job.targets)) for job in config.schedules.jobs],
                alert_targets=list(config.alerts.targets))


def from_raw(data: dict) -> Refs:
    """The ids as written in the YAML (a dict as yaml.safe_load returns it), whatever else is wrong."""
    refs = Refs()
    for path in LISTS:
        refs.ids[path] = [_text(item.get("id")) if isinstance(item, dict) else None for item in _list_at(data, path)]
    for job in _list_at(data, ("schedules", "jobs")):
        if isinstance(job, dict):
            targets = job.get("targets")
            refs.jobs.append((_text(job.get("spider", "site_patrol")), targets if isinstance(targets, list) else []))
        else:
            refs.jobs.append((None, []))
    alerts = data.get("alerts")
    targets = alerts.get("targets") if isinstance(alerts, dict) else None
    refs.alert_targets = [key for key in targets if isinstance(key, str)] if isinstance(targets, dict) else []
    return refs


def _list_at(data, path: tuple) -> list:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, list) else []


def _text(value) -> str | None:
    return value.strip() if isinstance(value, str) else None


def reference_problems(refs: Refs) -> list[tuple[tuple, str]]:
    """(field path, what is wrong) for every id given twice in its list, every job target
    that names no entry of its spider's list, and every ``alerts.targets`` key that names no
    target, channel or source."""
    problems: list[tuple[tuple, str]] = []
    for path, kind in LISTS.items():
        seen: set[str] = set()
        for i, item_id in enumerate(refs.ids.get(path, [])):
            if item_id is not None and item_id in seen:
                problems.append(((*path, i, "id"), f"duplicate {kind} id {item_id!r}"))
            seen.add(item_id)
    for i, (spider, targets) in enumerate(refs.jobs):
        if spider not in SPIDER_LISTS:
            continue  # the job's own error says so
        path = SPIDER_LISTS[spider]
        ids = {item_id for item_id in refs.ids.get(path, []) if item_id is not None}
        for j, wanted in enumerate(targets):
            if isinstance(wanted, str) and wanted not in ids:
                choices = ", ".join(sorted(ids)) or "none configured"
                problems.append((("schedules", "jobs", i, "targets", j),
                                 f"unknown {LISTS[path]} {wanted!r} (known: {choices})"))
    pages_of = [t for t in refs.ids.get(("targets",), []) if t is not None]
    pages_of += [pseudo_target("channel", c) for c in refs.ids.get(("channels",), []) if c is not None]
    pages_of += [pseudo_target("source", s) for s in refs.ids.get(("sources",), []) if s is not None]
    pages_of = list(dict.fromkeys(pages_of))
    for key in refs.alert_targets:  # per-target alert rules are looked up by the id the pages are stored under
        if key not in pages_of:
            listed = [p for p in (pseudo_target("channel", key), pseudo_target("source", key)) if p in pages_of]
            problems.append((("alerts", "targets", key), unknown_id("target", key, pages_of, *listed[:1])))
    return problems
