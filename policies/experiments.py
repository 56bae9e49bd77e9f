"""A/B experiment specs (pydantic): what the policy YAML, the admin API, the CLI and the db accept.

Errors name the field at fault, e.g. `variants.1.weight` or `variants`. `check_targets`
says whether the arms' models, versions and labels exist, from facts the caller gathered
(the router asks the cold pool; the policy holds its own labels).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from base.names import MODEL_NAME_RE

ModelName = Annotated[str, Field(pattern=MODEL_NAME_RE.pattern, max_length=128)]
Label = Annotated[str, Field(pattern=MODEL_NAME_RE.pattern, max_length=128)]


class Target(BaseModel):
    """A real model, optionally a fixed version or label of it."""

    model_config = ConfigDict(extra="forbid")

    model: ModelName
    version: int | None = Field(None, gt=0, description="a fixed version of the model; "
                                "the router's admin API refuses one the store lacks")
    label: Label | None = Field(None, description="a version label of the model (the policy's "
                                "`labels`); refused when the model has no such label")
    name: ModelName | None = Field(
        None, description="variant name in headers and stats; default model[.vN|.label]")

    @model_validator(mode="after")
    def _one_of_version_label(self) -> Target:
        if self.version is not None and self.label is not None:
            raise ValueError("give version or label, not both")
        return self

    @property
    def variant_name(self) -> str:
        """How this variant is named in headers, counts and stats."""
        if self.name:
            return self.name
        if self.version is not None:
            return f"{self.model}.v{self.version}"
        if self.label is not None:
            return f"{self.model}.{self.label}"
        return self.model


class Variant(Target):
    weight: int = Field(..., ge=0, le=100)


class Shadow(Target):
    percent: float = Field(..., gt=0, le=100, description="share of requests mirrored")


class ExperimentSpec(BaseModel):
    """An experiment owns the public model name `name`; clients call that name."""

    model_config = ConfigDict(extra="forbid")

    name: ModelName
    variants: list[Variant] = Field(..., min_length=1, max_length=100)
    shadow: Shadow | None = None
    sticky_header: str | None = Field(
        None, pattern=r"^[A-Za-z0-9-]{1,64}$",
        description="header hashed to pick the variant; default: the router's sticky header")

    @field_validator("variants")
    @classmethod
    def _weights_and_names(cls, variants: list[Variant]) -> list[Variant]:
        total = sum(v.weight for v in variants)
        if total != 100:
            raise ValueError(f"weights must sum to 100, not {total}")
        names = [v.variant_name for v in variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique: {names}")
        return variants

    @model_validator(mode="after")
    def _shadow_name(self) -> ExperimentSpec:
        taken = {v.variant_name for v in self.variants}
        if self.shadow is not None and self.shadow.variant_name in taken:
            raise ValueError("shadow: its name clashes with a variant's; set shadow.name")
        return self

    def stored(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class ExperimentUpdate(BaseModel):
    """PUT body: everything but the name (it is in the path)."""

    model_config = ConfigDict(extra="forbid")

    variants: list[Variant] = Field(..., min_length=1, max_length=100)
    shadow: Shadow | None = None
    sticky_header: str | None = None


@dataclass(frozen=True)
class Known:
    """What is known to exist of one model; None where it could not be learnt."""

    in_store: bool | None = None
    versions: frozenset[int] | None = None
    labels: Mapping[str, int] | None = None


UNKNOWN = Known()


def arms(spec: ExperimentSpec) -> list[tuple[tuple[str | int, ...], Target]]:
    """Every target of an experiment with its place in the spec (`("variants", 1)`)."""
    found: list[tuple[tuple[str | int, ...], Target]] = [
        (("variants", i), v) for i, v in enumerate(spec.variants)]
    if spec.shadow is not None:
        found.append((("shadow",), spec.shadow))
    return found


def check_targets(spec: ExperimentSpec, known: Mapping[str, Known]
                  ) -> tuple[list[tuple[tuple[str | int, ...], str]], list[str]]:
    """(errors as (field, message), fields that could not be checked): an arm naming a
    model the store does not hold, or a version or label the model does not have (pure)."""
    errors: list[tuple[tuple[str | int, ...], str]] = []
    unchecked: list[str] = []
    for loc, target in arms(spec):
        facts = known.get(target.model, UNKNOWN)
        dotted = ".".join(str(part) for part in loc)
        if facts.in_store is False:
            errors.append(((*loc, "model"), f"model {target.model} is not in the model store"))
            continue
        if target.label is not None:
            if facts.labels is None:
                unchecked.append(f"{dotted}.label")
            elif target.label not in facts.labels:
                names = ", ".join(sorted(facts.labels)) or "none"
                errors.append(((*loc, "label"), f"model {target.model} has no label "
                               f"{target.label!r} (its labels: {names})"))
        if target.version is not None:
            if facts.versions is None:
                unchecked.append(f"{dotted}.version")
            elif target.version not in facts.versions:
                have = ", ".join(str(v) for v in sorted(facts.versions)) or "none"
                errors.append(((*loc, "version"), f"model {target.model} has no version "
                               f"{target.version} (its versions: {have})"))
    return errors, unchecked
