"""The base of every configuration file's sections (cities, fraud rules): strict and frozen.

pydantic's own "extra fields not permitted" names the stray key but not what the section takes;
an operator editing YAML by hand wants both.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class StrictSection(BaseModel):
    """A mapping of the file: an unknown key is an error that lists the accepted ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys_only(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = [key for key in data if key not in cls.model_fields]
            if unknown:
                accepted = ", ".join(cls.model_fields)
                raise ValueError(f"unknown key {unknown[0]!r} (accepted keys: {accepted})")
        return data
