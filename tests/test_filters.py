"""The portable filter language, compiled to SQL and run against a real store."""

from __future__ import annotations

import sqlite3

import numpy as np
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
from imgfind.stores import CollectionInfo, Record, open_backend

ROWS = [
    # id, metadata, exif, file, width, format, taken
    ("a", {"breed": "labrador", "age": 3, "tags": ["beach", "dog"], "vip": True,
           "owner": {"name": "Ann", "city": "Oslo"}, "note": "runs on the beach"},
     {"Make": "Canon", "GPS": {"lat": 59.9}}, {"size": 1000, "ext": ".jpg"}, 640, "JPEG",
     "2021-05-01T10:00:00"),
    ("b", {"breed": "poodle", "age": 7.5, "tags": ["park"], "vip": False,
           "owner": {"name": "Bo"}, "note": "sleeps"},
     {"Make": "Nikon"}, {"size": 5000, "ext": ".png"}, 1920, "PNG", "2023-01-02T08:00:00"),
    ("c", {"breed": "labrador", "age": "3", "tags": [], "score": None},
     {}, {"size": 300, "ext": ".jpg"}, 300, "JPEG", None),
    ("d", {"breed": "Labrador", "age": 12, "tags": ["dog", 5]},
     {"Make": "Canon EOS"}, {"size": 9000}, None, None, "2024-12-31T23:59:59"),
    ("e", {"ünïcode": "日本語", "n-dash_key": 1},
     {}, {}, 100, "WEBP", None),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    backend = open_backend(tmp_path_factory.mktemp("home"))
    s = backend.create(CollectionInfo(name="f", model="toy", dim=4))
    recs = []
    for i, (id, meta, exif, file, width, fmt, taken) in enumerate(ROWS):
        v = np.zeros(4, np.float32)
        v[i % 4] = 1
        recs.append(Record(id=id, source=f"/photos/{id}.jpg", vector=v, metadata=meta,
                           exif=exif, file=file, width=width, height=width, format=fmt,
                           taken=taken, original=b"x" if id == "e" else None))
    s.put(recs)
    yield s
    backend.close()


def ids(store, where) -> list[str]:
    return store.ids(where)


@pytest.mark.parametrize("where, expected", [
    ({"breed": "labrador"}, ["a", "c"]),                    # bare value: $eq, case-sensitive
    ({"metadata.breed": "labrador"}, ["a", "c"]),
    ({"breed": {"$eq": "poodle"}}, ["b"]),
    ({"breed": {"$ne": "labrador"}}, ["b", "d", "e"]),     # $ne includes items without it
    ({"age": 3}, ["a"]),                                     # number never equals "3"
    ({"age": "3"}, ["c"]),
    ({"age": {"$gt": 3}}, ["b", "d"]),
    ({"age": {"$gte": 3}}, ["a", "b", "d"]),
    ({"age": {"$lt": 7.5}}, ["a"]),
    ({"age": {"$lte": 7.5}}, ["a", "b"]),
    ({"age": {"$gt": 1, "$lt": 10}}, ["a", "b"]),
    ({"age": {"$gte": "0"}}, ["c"]),                         # strings only compare to strings
    ({"breed": {"$in": ["poodle", "Labrador"]}}, ["b", "d"]),
    ({"breed": {"$nin": ["poodle", "Labrador"]}}, ["a", "c", "e"]),
    ({"age": {"$in": [3, 12]}}, ["a", "d"]),
    ({"breed": {"$in": []}}, []),
    ({"breed": {"$nin": []}}, ["a", "b", "c", "d", "e"]),
    ({"vip": True}, ["a"]),
    ({"vip": False}, ["b"]),
    ({"vip": {"$ne": True}}, ["b", "c", "d", "e"]),
    ({"age": 1}, []),                                        # true is not 1
    ({"score": None}, ["a", "b", "c", "d", "e"]),            # null or missing
    ({"score": {"$exists": True}}, []),                      # JSON null counts as absent
    ({"vip": {"$exists": True}}, ["a", "b"]),
    ({"vip": {"$exists": False}}, ["c", "d", "e"]),
    ({"tags": {"$contains": "dog"}}, ["a", "d"]),            # array membership
    ({"tags": {"$contains": 5}}, ["d"]),
    ({"tags": {"$contains": "do"}}, []),                     # membership, not substring
    ({"note": {"$contains": "beach"}}, ["a"]),               # substring of a string
    ({"source": {"$contains": "/photos/b"}}, ["b"]),
    ({"owner.name": "Ann"}, ["a"]),                          # dotted keys: nested objects
    ({"owner.city": {"$exists": True}}, ["a"]),
    ({"exif.Make": "Canon"}, ["a"]),
    ({"exif.Make": {"$contains": "Canon"}}, ["a", "d"]),
    ({"exif.GPS.lat": {"$gt": 59}}, ["a"]),
    ({"file.size": {"$gte": 1000}}, ["a", "b", "d"]),
    ({"file.ext": ".jpg"}, ["a", "c"]),
    ({"width": {"$gte": 640}}, ["a", "b"]),
    ({"width": None}, ["d"]),
    ({"format": {"$in": ["PNG", "WEBP"]}}, ["b", "e"]),
    ({"taken": {"$gte": "2023-01-01"}}, ["b", "d"]),         # ISO dates compare as strings
    ({"taken": {"$exists": False}}, ["c", "e"]),
    ({"stored": True}, ["e"]),
    ({"id": {"$in": ["a", "e", "zz"]}}, ["a", "e"]),
])
def test_operators(store, where, expected):
    assert ids(store, where) == expected


def test_non_ascii_values_and_dash_keys(store):
    assert ids(store, {"n-dash_key": 1}) == ["e"]
    assert ids(store, {"note": {"$contains": "beach"}, "breed": "labrador"}) == ["a"]


@pytest.mark.parametrize("where, expected", [
    ({"$or": [{"breed": "poodle"}, {"exif.Make": "Canon"}]}, ["a", "b"]),
    ({"$and": [{"breed": "labrador"}, {"age": {"$gt": 2}}]}, ["a"]),
    ({"$not": {"breed": "labrador"}}, ["b", "d", "e"]),
    ({"breed": {"$not": {"$in": ["labrador", "poodle"]}}}, ["d", "e"]),
    ({"$or": [{"$and": [{"breed": "labrador"}, {"width": {"$lt": 500}}]},
              {"$not": {"$or": [{"width": {"$gte": 0}}, {"width": None}]}}]}, ["c"]),
    ({"breed": "labrador", "$or": [{"age": 3}, {"age": "3"}]}, ["a", "c"]),
    ({}, ["a", "b", "c", "d", "e"]),
])
def test_logic_nesting(store, where, expected):
    assert ids(store, where) == expected


@pytest.mark.parametrize("key", [
    "breed'; DROP TABLE items; --", 'a"b', "a..b", ".a", "a.", "a b", "a$b", "",
    "metadata", "exif", "$where", "a/b", "x" * 200, "ünïcode",
])
def test_hostile_or_bad_keys_are_rejected(store, key):
    with pytest.raises(InvalidFilter):
        compile_filter({key: 1})


@pytest.mark.parametrize("value", [
    "x' OR '1'='1", "'; DROP TABLE items; --", '") OR 1=1 --', "%", "_", "\\", "\x00",
])
def test_injection_in_values_is_just_data(store, value):
    assert ids(store, {"breed": value}) == []
    assert ids(store, {"note": {"$contains": value}}) == []
    assert store.count() == len(ROWS)       # the table is still there


@pytest.mark.parametrize("where, fragment", [
    ({"age": {"$regex": "x"}}, "unknown operator '$regex'"),
    ({"$nor": [{"a": 1}]}, "unknown operator '$nor'"),
    ({"age": {"$gt": [1]}}, "$gt"),
    ({"age": {"$gt": None}}, "$gt"),
    ({"age": {"$gt": True}}, "$gt"),
    ({"age": {"$in": 3}}, "$in needs a list"),
    ({"age": {"$exists": 1}}, "$exists"),
    ({"age": {"$contains": None}}, "$contains"),
    ({"age": {"x": 1}}, "unknown operator 'x'"),
    ({"age": {}}, "empty condition"),
    ({"age": [1, 2]}, "use $in"),
    ({"owner": {"name": "Ann"}}, "unknown operator 'name'"),
    ({"$and": []}, "non-empty list"),
    ({"$or": {"a": 1}}, "non-empty list"),
    ({"$not": [1]}, "must be an object"),
    ({"width": "wide"}, "needs a number"),
    ({"width": {"$gt": "1"}}, "needs a number"),
    ({"taken": {"$gt": 2020}}, "needs a string"),
    ({"age": float("nan")}, "finite"),
    ({"vip": {"$lt": False}}, "$lt"),
])
def test_type_and_operator_errors_name_the_problem(store, where, fragment):
    with pytest.raises(InvalidFilter) as e:
        store.count(where)
    assert fragment in str(e.value)


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


def test_booleans_stay_out_of_numeric_ranges(store):
    assert ids(store, {"vip": {"$gte": 0}}) == []
    assert ids(store, {"vip": {"$lt": 2}}) == []
    assert ids(store, {"vip": 1}) == []
    assert ids(store, {"age": {"$gt": 2.5}}) == ["a", "b", "d"]


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
