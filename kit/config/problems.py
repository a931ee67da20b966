"""One broken rule, one line: a recipe or a notebook's parameters checked against a schema, and what is wrong.

jsonschema's own errors name a schema path; a user needs the key, the value, the flag that set it and the
sentence that says what is allowed (the property's ``description`` in :mod:`kit.config.schema`)::

    batch_size = 0 (from --batch-size): must be an integer >= 1

:data:`Validator` is JSON Schema 2020-12 over Python values (tuples, paths, numpy scalars); :func:`schema_problems`
lists every break as a :class:`Problem`, those a flag caused first.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

from kit.config.schema import import_jsonschema, node_at

__all__ = ["Validator", "MISSING", "show", "Problem", "origin_of", "schema_problems"]

jsonschema = import_jsonschema()

# ---------------------------------------------------------------------------------------------
# The validator: JSON Schema 2020-12, with Python's own containers
# ---------------------------------------------------------------------------------------------


def _is_array(checker, value) -> bool:
    return isinstance(value, (list, tuple))


def _is_number(checker, value) -> bool:  # numpy scalars too; never a bool, never NaN or infinity
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_integer(checker, value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, float) and value.is_integer()


def _is_string(checker, value) -> bool:  # a path given as a pathlib.Path too (the schema puts no length on paths)
    return isinstance(value, (str, os.PathLike))


_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine_many(
    {"array": _is_array, "number": _is_number, "integer": _is_integer, "string": _is_string}
)


def _min_length(validator, length, instance, schema):  # (on the text of a Path, not len(Path))
    if validator.is_type(instance, "string") and len(os.fspath(instance)) < length:
        yield jsonschema.ValidationError(f"{instance!r} is shorter than {length}")


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not re.search(pattern, os.fspath(instance)):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


#: JSON Schema 2020-12 over Python values: a tuple is an array, a ``pathlib.Path`` a string, a numpy scalar a
#: number; NaN and infinity are not numbers (so ``--lr nan`` is refused like ``--lr -1``), nor is a bool.
Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"minLength": _min_length, "pattern": _pattern}, type_checker=_TYPES
)

# ---------------------------------------------------------------------------------------------
# One problem, one line
# ---------------------------------------------------------------------------------------------

MISSING = object()


def show(value: Any, limit: int = 80) -> str:
    """A value as the user would type it back (Python's repr), cut to ``limit`` characters."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Problem:
    """What is wrong: ``key`` (dotted) holds ``value``, and ``allowed`` says what it must be."""

    key: str
    value: Any
    allowed: str
    related: tuple = ()  # other keys the rule reads: their origin is worth naming too

    def line(self, origins: Optional[Mapping[str, str]] = None) -> str:
        """``KEY = VALUE (from FLAG): what is allowed`` (``KEY is missing: ...`` for a missing key)."""
        origin = origin_of(self.key, origins)
        where = f" (from {origin})" if origin else ""
        related = [f"{key} from {origin_of(key, origins)}" for key in self.related if origin_of(key, origins)]
        also = f" ({'; '.join(related)})" if related and not origin else ""
        if self.value is MISSING:
            return f"{self.key} is missing{where}: {self.allowed}{also}"
        return f"{self.key} = {show(self.value)}{where}: {self.allowed}{also}"


def origin_of(key: str, origins: Optional[Mapping[str, str]]) -> Optional[str]:
    """The flag that set ``key`` or a section holding it (``origins``: dotted key -> flag), if any."""
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        found = (origins or {}).get(".".join(parts[:n]))
        if found:
            return found
    return None


def _dotted(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path) or "(the whole)"


def _problem(error: jsonschema.ValidationError, schema: Mapping, instance: Any) -> Problem:
    """jsonschema's error as a :class:`Problem` at the key whose ``description`` says what is allowed."""
    path = list(error.absolute_path)
    if error.validator == "required":
        missing = next(k for k in error.validator_value if k not in error.instance)
        node = node_at(schema, path + [missing])
        return Problem(_dotted(path + [missing]), MISSING, (node or {}).get("description", "must be given"))
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        extra = next(k for k in error.instance if k not in known)
        where = f"{_dotted(path)} takes" if path else "a recipe takes"
        return Problem(_dotted(path + [extra]), error.instance[extra], f"unknown key; {where} {', '.join(known)}")
    # the deepest named key on the path: its whole value, and its sentence
    node, depth, value = schema, 0, instance
    for part in path:
        props = node.get("properties", {})
        if not isinstance(part, str) or part not in props:
            break
        node, depth, value = props[part], depth + 1, value[part]
    allowed = node.get("description", error.message)
    if depth < len(path):  # one element of it (an item of a list) broke the rule
        allowed += f"; {show(error.instance)} is not " + ("one of them" if error.validator == "enum" else "allowed")
    return Problem(_dotted(path[:depth]), value, allowed)


def schema_problems(schema: Mapping, instance: Any, origins: Optional[Mapping[str, str]] = None) -> list[Problem]:
    """Every place ``instance`` breaks ``schema``, as problems; those a flag caused first, then in schema order."""
    problems = [_problem(error, schema, instance) for error in Validator(schema).iter_errors(instance)]
    return sorted(problems, key=lambda p: origin_of(p.key, origins) is None)
