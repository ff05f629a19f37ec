"""Livepeer's own OpenAPI document as a validator of our answers (``jsonschema``, JSON Schema
2020-12, the dialect of OpenAPI 3.1).

Two things are added to the plain validator:

* ``writeOnly: true`` fails when the field is present: a write-only field (a webhook's
  ``sharedSecret``, Pinata credentials, ``staticMp4``) must never be in an answer;
* the fields that only this service has are taken out before validation, but only those listed in
  ``docs/api.md`` (its table "Fields only this service has"): an undocumented extra is a mismatch.

Three quirks of Livepeer's file are read as its authors meant them (``specs/README.md``):
``properties: {$ref: X}`` pulls in the properties that ``X`` names, and ``description`` values
that are objects (``{$ref: ...}``) are dropped.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import yaml
from jsonschema import exceptions

__all__ = ["Answer", "Spec", "documented_extras", "load", "spec_path"]

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "api.md"
_SPEC = Path("shared") / "reference" / "specs" / "livepeer-api-schema.yaml"


def spec_path() -> Path | None:
    """Livepeer's document, from the ``shared/`` folder beside the repository (or above it)."""
    for parent in ROOT.parents:
        if (parent / _SPEC).exists():
            return parent / _SPEC
    return None


@dataclasses.dataclass(frozen=True)
class Answer:
    """One answer of the service: which operation of the spec, its status and its body."""

    method: str
    #: The spec's path template (``/task/{taskId}``); ``None`` for our own endpoints, whose
    #: ``schema`` (a component name, or ``task-in-object`` for ``{"task": ...}``) is given.
    path: str | None
    status: int
    body: Any
    schema: str | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path or self.schema} -> {self.status}"


def _resolve(document: dict[str, Any], ref: str) -> Any:
    found: Any = document
    for part in ref.removeprefix("#/").split("/"):
        found = found[part.replace("~1", "/").replace("~0", "~")]
    return found


def _fix_quirks(node: Any, document: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        fixed: dict[str, Any] = {}
        for key, value in node.items():
            if key == "description" and not isinstance(value, str):
                continue
            if key == "properties" and isinstance(value, dict) and "$ref" in value:
                merged = dict(_resolve(document, value["$ref"]))
                merged.update({k: v for k, v in value.items() if k != "$ref"})
                value = merged
            fixed[key] = _fix_quirks(value, document)
        return fixed
    if isinstance(node, list):
        return [_fix_quirks(item, document) for item in node]
    return node


def _write_only(
    validator: Any, value: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[exceptions.ValidationError]:
    if value:
        yield exceptions.ValidationError("a write-only field is in an answer")


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"writeOnly": _write_only}
)


def documented_extras() -> list[str]:
    """The dotted paths of the table "Fields only this service has" in ``docs/api.md``."""
    text = DOCS.read_text()
    section = text.split("## Fields only this service has", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\|\s*`([^`]+)`\s*\|", section, flags=re.M)


def _strip(instance: Any, extras: list[str], prefix: tuple[str, ...] = ()) -> Any:
    """``instance`` without the documented extra fields (matched by the end of their path)."""
    if isinstance(instance, dict):
        kept = {}
        for key, value in instance.items():
            path = ".".join((*prefix, key))
            if any(path == extra or path.endswith("." + extra) for extra in extras):
                continue
            kept[key] = _strip(value, extras, (*prefix, key))
        return kept
    if isinstance(instance, list):
        return [_strip(item, extras, prefix) for item in instance]
    return instance


class Spec:
    """The document, ready to check answers."""

    def __init__(self, document: dict[str, Any], extras: list[str]) -> None:
        self.document = document
        self.extras = extras
        resource = referencing.Resource.from_contents(
            document, default_specification=referencing.jsonschema.DRAFT202012
        )
        self.registry: referencing.Registry[Any] = referencing.Registry().with_resource(
            "urn:livepeer", resource
        )

    def _schema_of(self, answer: Answer) -> dict[str, Any]:
        if answer.path is None:
            assert answer.schema is not None
            if answer.schema == "task-in-object":
                return {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["task"],
                    "properties": {"task": {"$ref": "urn:livepeer#/components/schemas/task"}},
                }
            return {"$ref": f"urn:livepeer#/components/schemas/{answer.schema}"}
        operation = self.document["paths"][answer.path][answer.method.lower()]
        responses = operation["responses"]
        response = responses.get(str(answer.status)) or responses["default"]
        if "content" not in response:  # GET /task/{taskId} documents no error body: Studio's
            return {"$ref": "urn:livepeer#/components/schemas/error"}
        schema = response["content"]["application/json"]["schema"]
        return _rebase(copy.deepcopy(schema))

    def mismatches(self, answer: Answer) -> list[str]:
        """What in ``answer`` the spec does not allow (empty when it matches)."""
        validator = _Validator(self._schema_of(answer), registry=self.registry)
        instance = _strip(answer.body, self.extras)
        found = []
        for error in validator.iter_errors(instance):
            where = "/".join(str(part) for part in error.absolute_path) or "(root)"
            found.append(f"{answer}: {where}: {_best(error)}")
        return found


def _best(error: exceptions.ValidationError) -> str:
    if error.context:
        deepest = max(error.context, key=lambda e: len(e.absolute_path))
        where = "/".join(str(part) for part in deepest.absolute_path)
        return f"{error.message[:200]} (deepest: {where}: {deepest.message[:300]})"
    return error.message[:500]


def _rebase(node: Any) -> Any:
    """Point the document's own ``#/...`` references at the registered resource."""
    if isinstance(node, dict):
        return {
            key: f"urn:livepeer{value}"
            if key == "$ref" and isinstance(value, str)
            else _rebase(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rebase(item) for item in node]
    return node


def load() -> Spec:
    """The spec, its quirks read as meant, with the documented extras."""
    path = spec_path()
    if path is None:
        raise FileNotFoundError(f"{_SPEC} was found in no folder above {ROOT}")
    raw = yaml.safe_load(path.read_text())
    return Spec(_fix_quirks(raw, raw), documented_extras())
