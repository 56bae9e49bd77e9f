"""A/B experiment specs (pydantic): what the policy YAML, the admin API, the CLI and the db accept.

Errors name the field at fault, e.g. `variants.1.weight` or `variants`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from base.names import MODEL_NAME_RE

ModelName = Annotated[str, Field(pattern=MODEL_NAME_RE.pattern, max_length=128)]
Label = Annotated[str, Field(pattern=MODEL_NAME_RE.pattern, max_length=128)]


class Target(BaseModel):
    """A real model, optionally a fixed version or label of it."""

    model_config = ConfigDict(extra="forbid")

    model: ModelName
    version: int | None = Field(None, gt=0)
    label: Label | None = None
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
