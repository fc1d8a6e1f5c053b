"""Validating a big input in bounded steps, so one call never stalls the event loop long.

pydantic validates a model in one native call that holds the GIL: for a 1 MiB workflow
(7,000 tasks) that is ~90 ms in which the loop serves nobody, in a worker thread or not.
So a big input's long top-level lists are validated a slice at a time (the loop runs
between slices), the model once with each such list cut to its minimum length, and the
lists' own length limits on their own; the result is what `model_validate_json(...,
strict=True)` gives, and so are the errors (with their full locations). A model with
validators of its own (which might look at a whole list) is validated in one piece.
"""

from __future__ import annotations

import asyncio
import functools
import typing
from dataclasses import dataclass
from typing import Annotated, Any

import pydantic_core
from annotated_types import MinLen
from pydantic import BaseModel, TypeAdapter, ValidationError

SLICE = 200
"""Items validated in one go (a few ms for a workflow's tasks)."""
LONG = 2 * SLICE
"""A top-level list longer than this is validated in slices."""


@dataclass(frozen=True, slots=True)
class _ListField:
    items: TypeAdapter[list[Any]]
    length: TypeAdapter[list[Any]]
    """The field's own constraints (length), on items taken as they are."""
    keep: int
    """Items the model's one-piece validation keeps: the field's minimum length."""


@functools.cache
def _list_fields(model: type[BaseModel]) -> dict[str, _ListField]:
    """The fields that can be validated in slices: `list[X]` without a validator."""
    decorators = model.__pydantic_decorators__
    if decorators.model_validators:
        return {}
    validated = {name for d in decorators.field_validators.values() for name in d.info.fields}
    fields = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if typing.get_origin(annotation) is not list or name in validated:
            continue
        if field.alias is not None or field.validation_alias is not None:
            continue
        (item,) = typing.get_args(annotation)
        keep = max((m.min_length for m in field.metadata if isinstance(m, MinLen)), default=0)
        fields[name] = _ListField(
            TypeAdapter(list[item]),  # type: ignore[valid-type]  # the field's own item type
            TypeAdapter(Annotated[list[Any], *field.metadata]),
            keep,
        )
    return fields


def is_sliceable(model: type[BaseModel], args: dict[str, Any]) -> bool:
    """Whether `args` has a long list that `validate_in_steps` would slice."""
    fields = _list_fields(model)
    return any(
        type(value) is list and len(value) > LONG and name in fields for name, value in args.items()
    )


async def validate_in_steps(model: type[BaseModel], args: dict[str, Any]) -> BaseModel:
    """`model.model_validate_json(to_json(args), strict=True)`, a slice at a time."""
    fields = _list_fields(model)
    long = {
        name: value
        for name, value in args.items()
        if type(value) is list and len(value) > LONG and name in fields
    }
    validated: dict[str, list[Any]] = {}
    for name, value in long.items():
        field = fields[name]
        _prefixed(model, name, 0, field.length.validate_python, value)
        items: list[Any] = []
        for start in range(0, len(value), SLICE):
            text = pydantic_core.to_json(value[start : start + SLICE])
            items += _prefixed(model, name, start, field.items.validate_json, text)
            await asyncio.sleep(0)  # let the loop serve others between slices
        validated[name] = items
    cut = {**args, **{name: value[: fields[name].keep] for name, value in long.items()}}
    rest = model.model_validate_json(pydantic_core.to_json(cut), strict=True)
    return rest.model_copy(update=validated)


def _prefixed(
    model: type[BaseModel], name: str, offset: int, validate: Any, value: Any
) -> list[Any]:
    """`validate(value, strict=True)`, its errors located in field `name` from `offset`."""
    try:
        result: list[Any] = validate(value, strict=True)
    except ValidationError as exc:
        errors: list[Any] = []
        for error in exc.errors(include_url=False):
            loc = error["loc"]
            if loc and isinstance(loc[0], int):
                loc = (offset + loc[0], *loc[1:])
            detail = {"type": error["type"], "loc": (name, *loc), "input": error["input"]}
            if "ctx" in error:
                detail["ctx"] = error["ctx"]
            errors.append(detail)
        try:
            relocated = ValidationError.from_exception_data(model.__name__, errors)
        except (KeyError, TypeError, ValueError):  # an error type of a validator's own
            raise exc from None
        raise relocated from None
    return result
