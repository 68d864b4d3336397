"""Script rules: a small, safe expression language over the call and each provider.

``provider.zone == consumer.zone and not startswith(request.method, "admin")``

The text is parsed with Python's own expression grammar (``ast``, which executes
nothing) and then *checked against a whitelist* and evaluated by the tree walker
below -- never ``eval``/``exec``. What a script can name is three dicts of plain
values (``provider``, ``request``, ``consumer``) and a few pure functions; there is
no attribute access on objects (``a.b`` is a dict lookup, and names starting with
``_`` are refused), no imports, no comprehensions or lambdas (so no loops), no
``**``. Bounds: 1000 characters, 200 nodes, nesting depth 16 at parse time;
2000 evaluation steps, strings of 10 000 characters and integers of 64 bits when it
runs. (CVE-2021-30181 was Dubbo's script router running Nashorn JavaScript.)
"""

from __future__ import annotations

import ast
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._errors import BadRequestError

__all__ = ["Script", "ScriptError", "compile_script"]

MAX_SOURCE = 1000
MAX_NODES = 200
MAX_DEPTH = 16
MAX_STEPS = 2000
MAX_STRING = 10_000
MAX_INT = 1 << 64
ROOTS = ("provider", "request", "consumer")


class ScriptError(Exception):
    """A script went past a bound or met a type it cannot handle while running."""


def _text(x: Any) -> str:
    if not isinstance(x, str):
        raise ScriptError("expected a string")
    return x


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "glob": lambda text, pattern: fnmatch.fnmatchcase(_text(text), _text(pattern)),
    "startswith": lambda text, prefix: _text(text).startswith(_text(prefix)),
    "endswith": lambda text, suffix: _text(text).endswith(_text(suffix)),
    "lower": lambda text: _text(text).lower(),
    "upper": lambda text: _text(text).upper(),
    "len": lambda x: len(x) if isinstance(x, (str, list, tuple, dict)) else 0,
    "str": lambda x: str(x)[:MAX_STRING] if isinstance(x, (str, int, float, bool)) else "",
    "min": lambda *xs: min(xs),
    "max": lambda *xs: max(xs),
    "abs": lambda x: abs(x),
}

_BOOL = {ast.And: all, ast.Or: any}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod)
_ALLOWED = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.BinOp,
    *_ARITHMETIC,
    ast.Compare,
    *_COMPARE,
    ast.IfExp,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Attribute,
    ast.Subscript,
    ast.List,
    ast.Tuple,
    ast.Call,
)


@dataclass(frozen=True, slots=True)
class Script:
    """A checked expression; :meth:`evaluate` runs it over three dicts of facts."""

    text: str
    tree: ast.Expression
    per_call: bool  # reads request.args or request.attachments

    def evaluate(self, provider: dict[str, Any], request: dict[str, Any], consumer: Any) -> Any:
        steps = [0]
        scope = {"provider": provider, "request": request, "consumer": consumer}
        return _eval(self.tree.body, scope, steps)


def compile_script(text: str) -> Script:
    """Parse and check ``text``; a refusal is a ``BAD_REQUEST`` naming line and column."""
    if not isinstance(text, str) or not text.strip():
        raise BadRequestError("a script rule is a non-empty expression")
    if len(text) > MAX_SOURCE:
        raise BadRequestError(f"script rule: longer than {MAX_SOURCE} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise BadRequestError(
            f"script rule, line {exc.lineno}, column {exc.offset}: {exc.msg}"
        ) from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise BadRequestError(f"script rule: cannot be parsed ({type(exc).__name__})") from None
    per_call = False
    for count, (node, depth) in enumerate(_walk(tree), 1):
        where = f"script rule, column {getattr(node, 'col_offset', 0) + 1}"
        if count > MAX_NODES:
            raise BadRequestError(f"script rule: more than {MAX_NODES} parts")
        if depth > MAX_DEPTH:
            raise BadRequestError(f"{where}: nested deeper than {MAX_DEPTH}")
        if not isinstance(node, _ALLOWED):
            raise BadRequestError(f"{where}: {type(node).__name__} is not allowed")
        if isinstance(node, ast.Constant) and not isinstance(
            node.value, (str, int, float, bool, type(None))
        ):
            raise BadRequestError(f"{where}: only strings, numbers, booleans and None")
        if isinstance(node, ast.Name) and node.id not in ROOTS:
            raise BadRequestError(f"{where}: unknown name {node.id!r} (names: {', '.join(ROOTS)})")
        if isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                raise BadRequestError(f"{where}: names starting with '_' are not allowed")
            if node.attr in ("args", "attachments"):
                per_call = True
        if isinstance(node, ast.Call) and (
            not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS or node.keywords
        ):
            raise BadRequestError(
                f"{where}: only these functions, with plain arguments: {', '.join(FUNCTIONS)}"
            )
    return Script(text, tree, per_call)


def _walk(tree: ast.AST) -> Any:
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        yield node, depth
        for child in ast.iter_child_nodes(node):
            if isinstance(node, ast.Call) and child is node.func:
                continue  # the function's name is checked with the call
            stack.append((child, depth + 1))


def _eval(node: ast.AST, scope: dict[str, Any], steps: list[int]) -> Any:
    steps[0] += 1
    if steps[0] > MAX_STEPS:
        raise ScriptError(f"more than {MAX_STEPS} steps")
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return scope[node.id]
    if isinstance(node, ast.Attribute):
        base = _eval(node.value, scope, steps)
        return base.get(node.attr) if isinstance(base, dict) else None
    if isinstance(node, ast.Subscript):
        base = _eval(node.value, scope, steps)
        key = _eval(node.slice, scope, steps)
        if isinstance(base, dict):
            return base.get(key) if isinstance(key, (str, int)) else None
        if (
            isinstance(base, (list, tuple, str))
            and isinstance(key, int)
            and not isinstance(key, bool)
        ):
            return base[key] if -len(base) <= key < len(base) else None
        return None
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            result: Any = True
            for value in node.values:
                result = _eval(value, scope, steps)
                if not result:
                    return result
            return result
        result = False
        for value in node.values:
            result = _eval(value, scope, steps)
            if result:
                return result
        return result
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, scope, steps)
        if isinstance(node.op, ast.Not):
            return not operand
        return -_number(operand)
    if isinstance(node, ast.BinOp):
        return _arithmetic(node.op, _eval(node.left, scope, steps), _eval(node.right, scope, steps))
    if isinstance(node, ast.Compare):
        left = _eval(node.left, scope, steps)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, scope, steps)
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError:
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        chosen = node.body if _eval(node.test, scope, steps) else node.orelse
        return _eval(chosen, scope, steps)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval(item, scope, steps) for item in node.elts]
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        args = [_eval(arg, scope, steps) for arg in node.args]
        try:
            return _bounded(FUNCTIONS[node.func.id](*args))
        except (TypeError, ValueError) as exc:
            raise ScriptError(f"{node.func.id}(): {exc}") from None
    raise ScriptError(f"{type(node).__name__} cannot run")  # the checker lets none through


def _number(x: Any) -> int | float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ScriptError("expected a number")
    return x


def _arithmetic(op: ast.operator, a: Any, b: Any) -> Any:
    if isinstance(op, ast.Add) and isinstance(a, str) and isinstance(b, str):
        if len(a) + len(b) > MAX_STRING:
            raise ScriptError(f"a string longer than {MAX_STRING}")
        return a + b
    if isinstance(op, ast.Mult) and isinstance(a, str) != isinstance(b, str):
        raise ScriptError("strings are not repeated")
    x, y = _number(a), _number(b)
    try:
        if isinstance(op, ast.Add):
            return _bounded(x + y)
        if isinstance(op, ast.Sub):
            return _bounded(x - y)
        if isinstance(op, ast.Mult):
            return _bounded(x * y)
        if isinstance(op, ast.Div):
            return x / y
        if isinstance(op, ast.FloorDiv):
            return x // y
        return x % y
    except (ZeroDivisionError, OverflowError) as exc:
        raise ScriptError(str(exc)) from None


def _bounded(x: Any) -> Any:
    if isinstance(x, int) and not isinstance(x, bool) and not -MAX_INT <= x <= MAX_INT:
        raise ScriptError("an integer beyond 64 bits")
    if isinstance(x, str) and len(x) > MAX_STRING:
        raise ScriptError(f"a string longer than {MAX_STRING}")
    return x
