"""The label schema: names, one-line definitions and lexicon keywords, read from a YAML file.

``data/labels.yaml`` is the single source of truth for the labels. Everything that needs label
names (the dataset, models, the predictor, the annotation tool) gets them from a
:class:`LabelSchema`, so adding a label is a data change, not a code change.

Examples
--------
>>> schema = load_schema()
>>> schema.names[0]
'aid_pledge'
>>> schema.encode(["policy_shift"])
[0, 0, 0, 1]
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from newsevents.paths import DEFAULT_SCHEMA

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_SCHEMA_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
LABEL_SEPARATOR = ";"
# A schema's ``type``: any number of labels per sentence (none included), or exactly one.
MULTILABEL, MULTICLASS = "multilabel", "multiclass"
SCHEMA_TYPES = (MULTILABEL, MULTICLASS)


class SchemaError(ValueError):
    """A label-schema file, or a label list, does not fit the schema."""


@dataclass(frozen=True)
class Label:
    """One label: its name, a one-line definition and lexicon keywords."""

    name: str
    definition: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelSchema:
    """An ordered set of labels; the order fixes the columns of every multi-hot matrix.

    ``type`` is :data:`MULTILABEL` (a sentence has any number of labels, none included) or
    :data:`MULTICLASS` (exactly one label per sentence; its multi-hot row is one-hot).
    """

    labels: tuple[Label, ...]
    guideline: str = ""
    source: str = "<memory>"
    digest: str = field(default="", compare=False)
    name: str = ""  # names the schema's registered model and export directory
    type: str = MULTILABEL

    @property
    def names(self) -> list[str]:
        return [label.name for label in self.labels]

    @property
    def multiclass(self) -> bool:
        return self.type == MULTICLASS

    def __len__(self) -> int:
        return len(self.labels)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise SchemaError(
                f"unknown label {name!r} (schema {self.source} has: {', '.join(self.names)})"
            ) from None

    def parse(self, cell: str | float | None) -> list[str]:
        """Parse a ``;``-separated label cell into names in schema order.

        Raises :class:`SchemaError` on an unknown name, and, for a multiclass schema, on a
        cell that does not hold exactly one label.
        """
        names: set[str] = set()
        if cell is not None and not (isinstance(cell, float) and cell != cell):  # NaN: none
            names = {part.strip() for part in str(cell).split(LABEL_SEPARATOR) if part.strip()}
        for name in names:
            self.index(name)
        parsed = [n for n in self.names if n in names]
        if self.multiclass and len(parsed) != 1:
            found = LABEL_SEPARATOR.join(parsed) if parsed else "none"
            raise SchemaError(f"{len(parsed)} labels ({found}) but schema {self.source} is "
                              "multiclass: exactly one label per sentence")
        return parsed

    def encode(self, names: Iterable[str]) -> list[int]:
        """Multi-hot vector (one 0/1 per schema label) for a list of label names."""
        chosen = set(names)
        for name in chosen:
            self.index(name)
        return [int(n in chosen) for n in self.names]

    def decode(self, row: Iterable[int | bool]) -> list[str]:
        """Label names for a multi-hot row."""
        return [n for n, on in zip(self.names, row, strict=True) if on]

    def format(self, names: Iterable[str]) -> str:
        """The ``;``-separated cell for a list of label names, in schema order."""
        return LABEL_SEPARATOR.join(self.decode(self.encode(names)))


def load_schema(path: str | Path | None = None) -> LabelSchema:
    """Read and validate a label-schema YAML file (default: ``data/labels.yaml``)."""
    path = Path(path) if path is not None else DEFAULT_SCHEMA
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise SchemaError(f"{path}: cannot read label schema ({exc.strerror})") from None
    try:
        raw = yaml.safe_load(raw_bytes.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SchemaError(f"{path}: not a valid UTF-8 YAML file ({type(exc).__name__})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("labels"), list) or not raw["labels"]:
        raise SchemaError(f"{path}: expected a mapping with a non-empty 'labels' list")
    labels: list[Label] = []
    for i, item in enumerate(raw["labels"]):
        if not isinstance(item, dict) or "name" not in item:
            raise SchemaError(f"{path}: labels[{i}] needs a 'name'")
        name = str(item["name"])
        if not _NAME_RE.match(name):
            raise SchemaError(f"{path}: labels[{i}] name {name!r} must be lower_snake_case")
        if name in {label.name for label in labels}:
            raise SchemaError(f"{path}: label {name!r} is defined twice")
        keywords = tuple(str(k).lower() for k in item.get("keywords") or ())
        labels.append(Label(name, str(item.get("definition", "")).strip(), keywords))
    kind = raw.get("type", MULTILABEL)
    if kind not in SCHEMA_TYPES:
        raise SchemaError(f"{path}: type must be {' or '.join(SCHEMA_TYPES)}, got {kind!r}")
    if kind == MULTICLASS and len(labels) < 2:
        raise SchemaError(f"{path}: a multiclass schema needs at least two labels")
    name = str(raw.get("name") or path.stem).lower()
    if not _SCHEMA_NAME_RE.match(name):
        raise SchemaError(f"{path}: schema name {name!r} must be lower case letters, digits, "
                          "'-', '_' or '.' (it names a directory and a registered model)")
    return LabelSchema(
        labels=tuple(labels),
        guideline=str(raw.get("guideline", "")),
        source=str(path),
        digest=hashlib.sha256(raw_bytes).hexdigest(),
        name=name,
        type=kind,
    )
