"""The version policy, pure: which versions of a model to serve given those in its base path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class VersionPolicy:
    """TF Serving's ServableVersionPolicy: latest(num_versions), all, or specific(versions)."""

    kind: str = "latest"
    num_versions: int = 1
    versions: frozenset[int] = field(default_factory=frozenset)

    @classmethod
    def from_proto(cls, proto: Any) -> VersionPolicy:
        """From a FileSystemStoragePathSourceConfig.ServableVersionPolicy (unset: latest 1)."""
        choice = proto.WhichOneof("policy_choice")
        if choice == "all":
            return cls(kind="all")
        if choice == "specific":
            return cls(kind="specific", versions=frozenset(proto.specific.versions))
        num = proto.latest.num_versions if choice == "latest" else 1
        return cls(kind="latest", num_versions=num or 1)

    def select(self, on_disk: Iterable[int]) -> set[int]:
        present = sorted(set(on_disk))
        if self.kind == "all":
            return set(present)
        if self.kind == "specific":
            return self.versions & set(present)
        return set(present[-self.num_versions:]) if present else set()


def to_unload(loaded: Iterable[int], wanted: set[int], on_disk: set[int],
              any_wanted_available: bool) -> set[int]:
    """Versions to unload, availability-preserving.

    A version gone from disk goes at once. A version still on disk but no longer
    wanted waits until a wanted version is AVAILABLE, so the model never has a gap.
    """
    out: set[int] = set()
    for version in loaded:
        if version in wanted:
            continue
        if version not in on_disk or any_wanted_available:
            out.add(version)
    return out
