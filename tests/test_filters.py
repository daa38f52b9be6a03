"""The filter language: parsing into the typed tree and compiling to SQL.

What filters select in a real store, on every backend, is in tests/contract/test_filters.py.
"""

from __future__ import annotations

import sqlite3

import pytest

from imgfind.errors import InvalidFilter, UnsupportedFilter
from imgfind.filters import (
    OPS,
    And,
    Compare,
    Field,
    Not,
    Or,
    SQLCompiler,
    compile_filter,
    field_expression,
    json_fields,
    parse,
)


@pytest.mark.parametrize("key", [
    "breed'; DROP TABLE items; --", 'a"b', "a..b", ".a", "a.", "a b", "a$b", "",
    "metadata", "exif", "$where", "a/b", "x" * 200, "ünïcode",
])
def test_hostile_or_bad_keys_are_rejected(key):
    with pytest.raises(InvalidFilter):
        compile_filter({key: 1})


def test_filter_must_be_a_dict():
    with pytest.raises(InvalidFilter):
        compile_filter(["breed", "labrador"])  # type: ignore[arg-type]


def test_values_are_bound_and_paths_literal():
    sql, params = compile_filter({"group": "x' --", "exif.Make": {"$in": ["A", "B"]}})
    assert "x' --" not in sql and params == ["x' --", "A", "B"]
    assert """json_extract(metadata, '$."group"')""" in sql
    assert """json_extract(exif, '$."Make"')""" in sql
    assert field_expression("file.size") == """json_extract(file, '$."size"')"""
    assert field_expression("width") == "width"


def test_json_fields_lists_keys_for_expression_indexes():
    where = {"$or": [{"a.b": 1}, {"$not": {"exif.Make": "x"}}], "width": 3, "c": {"$gt": 1}}
    assert json_fields(where) == ["a.b", "exif.Make", "c"]


def test_equality_filter_uses_an_expression_index(tmp_path):
    con = sqlite3.connect(":memory:")
    con.execute("CREATE TABLE items(rowid INTEGER PRIMARY KEY, metadata TEXT)")
    con.execute(f"CREATE INDEX ix ON items({field_expression('group')})")
    for where in ({"group": "x"}, {"group": {"$gt": 3}}, {"group": {"$in": ["a", "b"]}}):
        sql, params = compile_filter(where)
        plan = " ".join(r[-1] for r in con.execute(
            f"EXPLAIN QUERY PLAN SELECT rowid FROM items WHERE {sql}", params))
        assert "USING INDEX ix" in plan, (where, plan)


def test_parse_builds_the_typed_tree_the_compilers_share():
    tree = parse({"breed": "labrador", "$or": [{"exif.GPS.lat": {"$gt": 59}},
                                               {"$not": {"tags": {"$in": ["a", None]}}}]})
    assert isinstance(tree, And) and len(tree.children) == 2
    eq, alt = tree.children
    assert eq == Compare("$eq", Field("breed", "metadata", ("breed",), "json"), "labrador")
    assert isinstance(alt, Or)
    gt, neg = alt.children
    assert gt.field == Field("exif.GPS.lat", "exif", ("GPS", "lat"), "json") and gt.value == 59
    assert isinstance(neg, Not) and neg.child.op == "$in" and neg.child.value == ("a", None)
    assert parse({}) == And(()) == parse(None)
    assert parse({"width": {"$not": 3}}) == Not(
        Compare("$eq", Field("width", "column", ("width",), "int"), 3))


@pytest.mark.parametrize("where", [{"age": {"$regex": "x"}}, {"width": "wide"}, {"": 1},
                                   {"$not": [1]}, {"age": {"$in": 3}}])
def test_parse_alone_validates(where):
    with pytest.raises(InvalidFilter):
        parse(where)


def test_an_operator_a_backend_cannot_express_is_a_typed_error():
    class NoContains(SQLCompiler):
        backend = "toy"
        supported = frozenset(OPS) - {"$contains"}

    assert NoContains().compile(parse({"a": 2})) == """json_extract(metadata, '$."a"') = ?"""
    with pytest.raises(UnsupportedFilter) as e:
        NoContains().compile(parse({"$or": [{"a": 1}, {"tags": {"$contains": "x"}}]}))
    assert e.value.status == 400 and e.value.code == "unsupported_filter"
    assert "$contains" in e.value.message and "toy" in e.value.message
    assert (e.value.operator, e.value.backend) == ("$contains", "toy")
    assert isinstance(e.value, InvalidFilter)
