"""The base of every backend's filter compiler: a walk over the parsed tree.

A backend subclasses :class:`Compiler`, names itself in ``backend``, lists
the operators it can express in ``supported`` and implements the four
``visit_*`` methods. :meth:`Compiler.compile` refuses an operator outside
``supported`` with :class:`~imgfind.errors.UnsupportedFilter` naming the
operator and the backend, so nothing is ever silently dropped.

>>> from imgfind.filters.tree import parse
>>> class Keys(Compiler[str]):
...     backend = "demo"
...     supported = frozenset({"$eq"})
...     def visit_and(self, node): return " & ".join(map(self.compile, node.children))
...     def visit_or(self, node): return " | ".join(map(self.compile, node.children))
...     def visit_not(self, node): return "!" + self.compile(node.child)
...     def visit_compare(self, node): return node.field.key
>>> Keys().compile(parse({"a": 1, "b": 2}))
'a & b'
>>> Keys().compile(parse({"a": {"$gt": 1}}))
Traceback (most recent call last):
imgfind.errors.UnsupportedFilter: the demo store cannot express the filter operator $gt (on 'a')
"""

from __future__ import annotations

from typing import Generic, TypeVar

from ..errors import UnsupportedFilter
from .tree import OPS, And, Compare, Node, Not, Or

__all__ = ["Compiler"]

T = TypeVar("T")


class Compiler(Generic[T]):
    """Compile a :data:`~imgfind.filters.tree.Node` into a backend's own filter form."""

    backend: str = "?"
    supported: frozenset[str] = frozenset(OPS)

    def compile(self, node: Node) -> T:
        if isinstance(node, Compare):
            if node.op not in self.supported:
                raise UnsupportedFilter(
                    f"the {self.backend} store cannot express the filter operator {node.op} "
                    f"(on {node.field.key!r})", operator=node.op, backend=self.backend)
            return self.visit_compare(node)
        if isinstance(node, Not):
            return self.visit_not(node)
        if isinstance(node, Or):
            return self.visit_or(node)
        return self.visit_and(node)

    def visit_and(self, node: And) -> T:
        """``node.children`` may be empty: match everything."""
        raise NotImplementedError

    def visit_or(self, node: Or) -> T:
        raise NotImplementedError

    def visit_not(self, node: Not) -> T:
        """Null-safe: items lacking the fields ``node.child`` reads must match."""
        raise NotImplementedError

    def visit_compare(self, node: Compare) -> T:
        raise NotImplementedError
