"""What the ``i2b`` command's options are made of: lists of numbers, and options made from a config dataclass.

:func:`add_config_options` turns each field of a dataclass such as
``TrainConfig`` into an option with the field's type, help and choices (its
``metadata``), so the command restates none of them. :class:`Parser` adds such
options only when its command is used: ``TrainConfig``'s choices come from the
method's modules, which import torch (about 3 s), and ``i2b --help`` and the
other commands need not wait for it.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing


def parse_ints(text: str) -> tuple[int, ...]:
    """``"1,2,2"`` -> ``(1, 2, 2)``; ``"1-3,5"`` -> ``(1, 2, 3, 5)``; ``""`` -> ``()``."""
    numbers: list[int] = []
    try:
        for part in (p.strip() for p in text.split(",")):
            if "-" in part[1:]:  # a range a-b (a leading minus is a sign)
                first, last = part.split("-", 1)
                numbers.extend(range(int(first), int(last) + 1))
            elif part:
                numbers.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, e.g. 1,2,2 or 1-3, not "
                                         f"{text!r}") from None
    return tuple(numbers)


def parse_subjects(text: str) -> list[int]:
    """``"1-3,5"`` -> ``[1, 2, 3, 5]``; at least one subject."""
    subjects = list(parse_ints(text))
    if not subjects:
        raise argparse.ArgumentTypeError(f"no subject numbers in {text!r}; write e.g. 1-3 or 1,4")
    return subjects


def add_config_options(parser: argparse.ArgumentParser, config_class) -> None:
    """One option per field of ``config_class``: ``--field-name``, of the field's type, help and choices.

    Unset options stay None, so that the config's own defaults apply (see :func:`given_fields`). A bool
    field gives ``--name`` / ``--no-name``, a tuple of ints a comma-separated list, ``X | None`` an X.
    """
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        flags, kind = (f"--{field.name.replace('_', '-')}", *field.metadata.get("aliases", ())), hints[field.name]
        if kind is bool:
            parser.add_argument(*flags, action=argparse.BooleanOptionalAction, default=None,
                                help=field.metadata["help"])
            continue
        if isinstance(kind, types.UnionType):  # X | None -> X
            kind = next(k for k in typing.get_args(kind) if k is not type(None))
        parse = parse_ints if typing.get_origin(kind) is tuple else kind
        parser.add_argument(*flags, dest=field.name, type=parse, choices=field.metadata["choices"], default=None,
                            help=field.metadata["help"])


def given_fields(args: argparse.Namespace, config_class) -> dict:
    """The fields of ``config_class`` whose options were given: what changes the defaults."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(config_class) if getattr(args, f.name) is not None}


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that adds some options only when it is used: ``deferred(parser)``, when it parses
    (its command was chosen) or prints its help."""

    def __init__(self, *args, deferred=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._deferred = deferred

    def _add_deferred(self) -> None:
        if self._deferred is not None:
            add, self._deferred = self._deferred, None
            add(self)

    def parse_known_args(self, args=None, namespace=None):
        self._add_deferred()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._add_deferred()
        return super().format_help()
