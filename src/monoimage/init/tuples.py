"""`typing.NamedTuple`'s class syntax without importing `typing`, which would cost PID 1 about
2 MiB of RSS for its whole life (measured with python3 -I -S: +2.2 MiB).

Modules write

    TYPE_CHECKING = False
    if TYPE_CHECKING:
        from typing import NamedTuple
    else:
        from .tuples import NamedTuple

so that type checkers see the real `typing.NamedTuple`, and at run time a class body with
annotated fields (defaults allowed, methods kept) becomes a tuple subclass with the same
behaviour: positional or keyword construction, fields by name and by index, equality and hash
of a tuple, `repr`, `_fields`, `_replace` and `_asdict`.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class _NamedTupleMeta(type):
    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, object]) -> type:
        if not bases:   # NamedTuple itself
            return super().__new__(mcs, name, bases, namespace)
        annotations = namespace.get("__annotations__", {})
        assert isinstance(annotations, dict)
        fields = tuple(annotations)
        defaults = {field: namespace[field] for field in fields if field in namespace}
        body = {key: value for key, value in namespace.items() if key not in fields}

        def __new__(cls: type, *args: object, **kwargs: object) -> tuple[object, ...]:
            if len(args) > len(fields):
                raise TypeError(f"{name}() takes {len(fields)} arguments, got {len(args)}")
            values = list(args)
            for field in fields[len(args):]:
                if field in kwargs:
                    values.append(kwargs.pop(field))
                elif field in defaults:
                    values.append(defaults[field])
                else:
                    raise TypeError(f"{name}() missing argument {field!r}")
            if kwargs:
                raise TypeError(f"{name}() got unexpected argument(s) {', '.join(kwargs)}")
            return tuple.__new__(cls, values)

        def __repr__(self: tuple[object, ...]) -> str:
            return f"{name}({', '.join(f'{f}={v!r}' for f, v in zip(fields, self))})"

        def _replace(self: tuple[object, ...], **changes: object) -> tuple[object, ...]:
            return type(self)(**{**dict(zip(fields, self)), **changes})

        def _asdict(self: tuple[object, ...]) -> dict[str, object]:
            return dict(zip(fields, self))

        body.update(__new__=__new__, __repr__=__repr__, _replace=_replace, _asdict=_asdict,
                    __slots__=(), _fields=fields, _field_defaults=defaults,
                    __getnewargs__=lambda self: tuple(self))
        for index, field in enumerate(fields):
            body[field] = property(_item(index), doc=field)
        return super().__new__(mcs, name, (tuple,), body)


def _item(index: int) -> "Callable[[tuple[object, ...]], object]":
    def get(self: tuple[object, ...]) -> object:
        return self[index]
    return get


class NamedTuple(metaclass=_NamedTupleMeta):
    """Base class of the init's records (see the module's docstring)."""
