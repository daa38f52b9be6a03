"""Every filter operator, dotted keys into metadata / EXIF / file facts, logic, type rules and
hostile values: the same answers from every backend, through ids, count and search."""

from __future__ import annotations

import numpy as np
import pytest

from imgfind.errors import InvalidFilter
from imgfind.stores import CollectionInfo, Record

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


ALL = [r[0] for r in ROWS]

OPERATOR_CASES = [
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
]

LOGIC_CASES = [
    ({"$or": [{"breed": "poodle"}, {"exif.Make": "Canon"}]}, ["a", "b"]),
    ({"$and": [{"breed": "labrador"}, {"age": {"$gt": 2}}]}, ["a"]),
    ({"$not": {"breed": "labrador"}}, ["b", "d", "e"]),
    ({"breed": {"$not": {"$in": ["labrador", "poodle"]}}}, ["d", "e"]),
    ({"$or": [{"$and": [{"breed": "labrador"}, {"width": {"$lt": 500}}]},
              {"$not": {"$or": [{"width": {"$gte": 0}}, {"width": None}]}}]}, ["c"]),
    ({"breed": "labrador", "$or": [{"age": 3}, {"age": "3"}]}, ["a", "c"]),
    ({}, ["a", "b", "c", "d", "e"]),
]

ERROR_CASES = [
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
]

INJECTIONS = [
    "x' OR '1'='1", "'; DROP TABLE items; --", '") OR 1=1 --', "%", "_", "\\", "\x00",
]


@pytest.fixture(scope="module")
def fstore(backend):
    name = "contractfilters"
    if name in {c.name for c in backend.collections()}:
        backend.drop(name)
    s = backend.create(CollectionInfo(name=name, model="toy", dim=4))
    recs = []
    for i, (id, meta, exif, file, width, fmt, taken) in enumerate(ROWS):
        v = np.zeros(4, np.float32)
        v[i % 4] = 1
        v[(i + 1) % 4] = 0.5
        recs.append(Record(id=id, source=f"/photos/{id}.jpg", vector=v, metadata=meta,
                           exif=exif, file=file, width=width, height=width, format=fmt,
                           taken=taken, original=b"x" if id == "e" else None))
    s.put(recs)
    yield s
    backend.drop(name)


@pytest.mark.parametrize("where, expected", OPERATOR_CASES + LOGIC_CASES)
def test_filters_select_the_same_items_everywhere(fstore, where, expected):
    assert fstore.ids(where) == expected
    assert fstore.count(where) == len(expected)
    q = np.ones((1, 4), np.float32)
    # k hits whenever k items match: every match comes back, nothing else.
    assert sorted(h[0] for h in fstore.search(q, 10, where=where)[0]) == sorted(expected)
    assert len(fstore.search(q, 2, where=where)[0]) == min(2, len(expected))


def test_dash_keys_and_combined_conditions(fstore):
    assert fstore.ids({"n-dash_key": 1}) == ["e"]
    assert fstore.ids({"note": {"$contains": "beach"}, "breed": "labrador"}) == ["a"]


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_in_values_is_just_data(fstore, value):
    assert fstore.ids({"breed": value}) == []
    assert fstore.ids({"note": {"$contains": value}}) == []
    assert fstore.count() == len(ROWS)       # the table is still there


@pytest.mark.parametrize("where, fragment", ERROR_CASES)
def test_type_and_operator_errors_name_the_problem(fstore, where, fragment):
    for call in (lambda: fstore.count(where), lambda: fstore.ids(where),
                 lambda: fstore.search(np.ones((1, 4), np.float32), 3, where=where)):
        with pytest.raises(InvalidFilter) as e:
            call()
        assert fragment in str(e.value)


def test_booleans_stay_out_of_numeric_ranges(fstore):
    assert fstore.ids({"vip": {"$gte": 0}}) == []
    assert fstore.ids({"vip": {"$lt": 2}}) == []
    assert fstore.ids({"vip": 1}) == []
    assert fstore.ids({"age": {"$gt": 2.5}}) == ["a", "b", "d"]


def test_text_search_honours_filters(fstore):
    assert {h[0] for h in fstore.text_search("photos")} == set(ALL)
    assert [h[0] for h in fstore.text_search("photos", where={"exif.Make": "Nikon"})] == ["b"]
