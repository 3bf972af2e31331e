"""Name -> function registries: a new graph family or consistency check is one decorated function."""

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def registrar(table: dict[str, T]) -> Callable[[str], Callable[[T], T]]:
    """A decorator factory: `@registrar(table)("name")` adds the function to `table` under "name"."""

    def named(name: str) -> Callable[[T], T]:
        def register(fn: T) -> T:
            table[name] = fn
            return fn

        return register

    return named
