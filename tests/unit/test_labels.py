"""The label schema file is the single source of truth."""

from __future__ import annotations

import pytest

from newsevents.labels import SchemaError, load_schema


def test_shipped_schema(schema):
    assert schema.names == ["aid_pledge", "threat_attribution", "diplomatic_meeting",
                            "policy_shift"]
    assert all(label.definition and label.keywords for label in schema.labels)
    assert schema.guideline == "docs/labeling-guide.md"
    assert len(schema.digest) == 64


def test_parse_encode_decode_round_trip(schema):
    names = schema.parse(" policy_shift ;aid_pledge;")
    assert names == ["aid_pledge", "policy_shift"]  # schema order
    assert schema.encode(names) == [1, 0, 0, 1]
    assert schema.decode([1, 0, 0, 1]) == names
    assert schema.format(["policy_shift", "aid_pledge"]) == "aid_pledge;policy_shift"
    assert schema.parse("") == [] and schema.parse(None) == []


def test_unknown_label_names_the_label_and_the_schema(schema):
    with pytest.raises(SchemaError, match=r"unknown label 'aid'.*labels.yaml"):
        schema.parse("aid")


def test_a_new_label_needs_no_code_change(tmp_path):
    path = tmp_path / "labels.yaml"
    path.write_text("labels:\n  - {name: sports, definition: a match}\n"
                    "  - {name: weather, definition: rain or sun, keywords: [rain]}\n")
    schema = load_schema(path)
    assert schema.names == ["sports", "weather"]
    assert schema.encode(["weather"]) == [0, 1]


@pytest.mark.parametrize(("content", "problem"), [
    ("labels: []\n", "non-empty 'labels'"),
    ("labels:\n  - {definition: x}\n", "needs a 'name'"),
    ("labels:\n  - {name: Bad-Name}\n", "lower_snake_case"),
    ("labels:\n  - {name: a}\n  - {name: a}\n", "defined twice"),
    ("labels: [\n", "not a valid UTF-8 YAML"),
    ("type: single\nlabels:\n  - {name: a}\n  - {name: b}\n",
     "type must be multilabel or multiclass, got 'single'"),
    ("type: multiclass\nlabels:\n  - {name: a}\n", "multiclass schema needs at least two"),
])
def test_bad_schema_files(tmp_path, content, problem):
    path = tmp_path / "labels.yaml"
    path.write_text(content)
    with pytest.raises(SchemaError, match=problem):
        load_schema(path)


def test_multiclass_schema_takes_exactly_one_label(tmp_path):
    path = tmp_path / "topics.yaml"
    path.write_text("type: multiclass\nlabels:\n  - {name: sport}\n  - {name: weather}\n")
    schema = load_schema(path)
    assert schema.multiclass and schema.type == "multiclass" and schema.name == "topics"
    assert schema.parse(" weather ") == ["weather"]
    for cell, problem in (("", r"0 labels \(none\)"), (None, r"0 labels \(none\)"),
                          ("weather;sport", r"2 labels \(sport;weather\)")):
        with pytest.raises(SchemaError, match=problem + r" but schema .*topics\.yaml is "
                                                        "multiclass: exactly one label"):
            schema.parse(cell)
    with pytest.raises(SchemaError, match="unknown label 'snow'"):
        schema.parse("snow")


def test_schema_type_defaults_to_multilabel(schema):
    assert schema.type == "multilabel" and not schema.multiclass
    assert schema.parse("aid_pledge;policy_shift") == ["aid_pledge", "policy_shift"]
