"""Duplicate review: keep one image of each duplicate group, delete the others.

Per group (the caller names the one to keep) or in bulk (every group of the
chosen tiers at a threshold, keeping each group's first member, the likely
original: most pixels, then file size). A dry run (the default) deletes
nothing and says how many images would go; ``expect`` makes the real run
refuse if that count changed in between (someone added or removed images).
Only the collection's items are deleted, never files on disk.

>>> plan = col.resolve_duplicates()                        # doctest: +SKIP
>>> plan.count, plan.dry_run                               # doctest: +SKIP
(12, True)
>>> col.resolve_duplicates(dry_run=False, expect=12).count  # doctest: +SKIP
12
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import InvalidInput, NotFound
from .types import DuplicateGroup

if TYPE_CHECKING:
    from .api import Collection

TIERS = ("exact", "near", "similar")
#: Tiers resolved in bulk unless others are named: "similar" groups (a burst, the same
#: scene) are different photos, so deleting them takes an explicit choice.
BULK_TIERS = ("exact", "near")


@dataclass
class ResolveReport:
    """What :func:`resolve` did (or, with ``dry_run``, would do).

    ``keep``: one id per group kept; ``delete``: the ids deleted (or to delete);
    ``count``: ``len(delete)``; ``errors``: ids that could not be deleted, with why.
    """

    dry_run: bool
    groups: int
    keep: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.delete)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "count": self.count}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResolveReport:
        return cls(dry_run=bool(d["dry_run"]), groups=int(d["groups"]), keep=list(d["keep"]),
                   delete=list(d["delete"]), errors=list(d.get("errors", [])))


def check_choices(groups: Any) -> list[tuple[str, list[str]]]:
    """``[{"keep": id, "ids": [...]}, ...]`` (or DuplicateGroups, keeping the first) as
    ``(keep, others)`` pairs; ``InvalidInput`` if a choice contradicts another."""
    if not isinstance(groups, (list, tuple)) or not groups:
        raise InvalidInput("groups must be a non-empty list of {\"keep\": id, \"ids\": [...]}")
    out: list[tuple[str, list[str]]] = []
    for g in groups:
        if isinstance(g, DuplicateGroup):
            g = {"keep": g.ids[0], "ids": g.ids}
        if not isinstance(g, Mapping) or set(g) - {"keep", "ids"}:
            raise InvalidInput("each group must be {\"keep\": id, \"ids\": [ids of the group]}")
        keep, ids = g.get("keep"), g.get("ids")
        if not isinstance(ids, (list, tuple)) or not all(isinstance(i, str) and i for i in ids):
            raise InvalidInput("a group's ids must be a list of item ids")
        if not isinstance(keep, str) or keep not in ids:
            raise InvalidInput(f"keep must be one of the group's ids; got {keep!r}")
        out.append((keep, [i for i in dict.fromkeys(ids) if i != keep]))
    kept = {k for k, _ in out}
    for _, others in out:
        clash = kept.intersection(others)
        if clash:
            raise InvalidInput(f"item {sorted(clash)[0]!r} is kept in one group and deleted "
                               "in another")
    return out


def resolve(col: Collection, groups: Sequence[Any] | None = None, *,
            threshold: float = 0.95, tiers: Sequence[str] | None = None,
            dry_run: bool = True, expect: int | None = None) -> ResolveReport:
    """Keep one image per group and delete the others (see the module docstring)."""
    if not isinstance(dry_run, bool):
        raise InvalidInput("dry_run must be true or false")
    if expect is not None and (isinstance(expect, bool) or not isinstance(expect, int)
                               or expect < 0):
        raise InvalidInput("expect must be a count (an integer >= 0)")
    if groups is None:
        chosen = BULK_TIERS if tiers is None else tuple(tiers)
        if not isinstance(tiers, (list, tuple, type(None))) or not chosen \
                or set(chosen) - set(TIERS):
            raise InvalidInput(f"tiers must be a list of {', '.join(TIERS)}")
        found = [g for g in col.duplicates(threshold) if g.tier in chosen]
        choices = check_choices(found) if found else []
    else:
        if tiers is not None:
            raise InvalidInput("tiers choose groups in bulk; with explicit groups leave it out")
        choices = check_choices(groups)
        # never delete the others of a group whose kept image is gone: all copies would be
        missing = [k for k, it in zip([k for k, _ in choices],
                                      col.get_many([k for k, _ in choices])) if it is None]
        if missing:
            raise NotFound(f"no item {missing[0]!r} to keep in collection {col.name!r}; "
                           "nothing was deleted")
    report = ResolveReport(dry_run=dry_run, groups=len(choices), keep=[k for k, _ in choices],
                           delete=[i for _, others in choices for i in others])
    if expect is not None and expect != report.count:
        raise InvalidInput(f"the dry run counted {expect} images to delete, but now there "
                           f"are {report.count}: review the groups again; nothing was deleted")
    if not dry_run and report.delete:
        results = col.delete_batch(report.delete)
        report.errors = [{"id": r.id or "", "error": r.error} for r in results if r.error]
        failed = {e["id"] for e in report.errors}
        report.delete = [i for i in report.delete if i not in failed]
    return report
