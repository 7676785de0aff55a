"""Typed config sections: frozen dataclasses checked once, when they are made.

As tonic's transforms, each config section (``train``, ``evaluate``, ``model.lmu`` ...) is
a small frozen dataclass. Its fields are declared with :func:`setting`, which records the
checks (type, lower bound, choices); :class:`Section` runs them in ``__post_init__``, so
a section that exists is valid. :func:`build` makes a section from JSON values on top of
an existing one and names the file and the dotted key of any bad value, with the closest
valid key for an unknown one. Standard library only.
"""

from __future__ import annotations

import dataclasses
import difflib

from nengo_actions.errors import ConfigError

_KIND_NAMES = {float: "a number", int: "an integer", bool: "true or false", str: "a string", tuple: "a list",
               list: "a list", dict: "an object"}


class FieldError(ConfigError):
    """A bad key or value; ``key`` is dotted, relative to the section checked.

    ``str()`` is ``key '<key>' <message>``, or ``unknown key '<key>'<message>`` for a key
    the section does not have; :func:`build` puts the file or ``--set`` in front.
    """

    def __init__(self, key, message, unknown=False):
        self.key, self.message, self.unknown = key, message, unknown
        super().__init__(f"unknown key '{key}'{message}" if unknown else f"key '{key}' {message}")

    def within(self, prefix):
        """The same error for the section ``prefix`` (``"train."``) holding this one."""
        return FieldError(prefix + self.key, self.message, self.unknown)


def setting(default=None, *, kind=None, low=None, above=None, choices=None, factory=None):
    """A config field.

    Parameters
    ----------
    default
        The default value (lists are given as tuples: a section is immutable).
    kind : type or None
        The type of the values; default: the type of ``default`` (needed when it is ``None``).
    low, above : number or None
        Inclusive (``low``) or exclusive (``above``) lower bound.
    choices : tuple of str or callable or None
        The strings the key may take; a callable is asked when a value is checked (the
        names in :mod:`nengo_actions.config.registry`, which may grow after import).
    factory : type or None
        A nested :class:`Section` class, whose default instance is the default; or
        ``dict`` for a free-form JSON object that defaults to an empty one.
    """
    if factory is not None and factory is not dict:
        return dataclasses.field(default_factory=factory, metadata={"section": factory})
    kind = kind or (type(default) if default is not None else None)
    # null is a value only of keys whose default is null (an optional path, a limit)
    metadata = {"kind": kind, "low": low, "above": above, "choices": choices, "nullable": default is None and factory is None}
    if factory is dict:
        return dataclasses.field(default_factory=dict, metadata=metadata)
    if isinstance(default, (dict, list)):
        raise TypeError("mutable default: give lists as tuples, objects as None")
    return dataclasses.field(default=default, metadata=metadata)


def closest(key, candidates, prefix=""):
    """`` (did you mean '<prefix><match>'?)`` for the candidate closest to ``key``, or ``""``."""
    match = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.5)
    return f" (did you mean '{prefix}{match[0]}'?)" if match else ""


def check_value(name, value, meta):
    """``value`` checked against a field's ``meta`` and converted (int to float, list
    to tuple); :class:`FieldError` when it does not fit."""
    kind = meta.get("kind")
    if value is None and not meta.get("nullable", True):
        raise FieldError(name, f"must be {_KIND_NAMES.get(kind, getattr(kind, '__name__', 'set'))}, got null")
    if value is None or kind is None:
        return value
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is tuple and isinstance(value, list):
        value = tuple(value)
    if (kind is not bool and isinstance(value, bool)) or not isinstance(value, kind):
        raise FieldError(name, f"must be {_KIND_NAMES.get(kind, kind.__name__)}, got {list(value) if isinstance(value, tuple) else value!r}")
    choices = meta.get("choices")
    choices = choices() if callable(choices) else choices
    if choices is not None and value not in choices:
        raise FieldError(name, f"must be one of {', '.join(choices)}; got {value!r}{closest(str(value), choices)}")
    for bound, inclusive in ((meta.get("low"), True), (meta.get("above"), False)):
        if bound is not None and isinstance(value, (int, float)) and (value < bound if inclusive else value <= bound):
            raise FieldError(name, f"must be {'at least' if inclusive else 'more than'} {bound}, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class Section:
    """Base of the config sections: every field is checked when the section is made.

    A subclass adds checks that span fields in :meth:`check`, raising :class:`FieldError`.
    """

    def __post_init__(self):
        for f in dataclasses.fields(self):
            if "kind" in f.metadata:
                object.__setattr__(self, f.name, check_value(f.name, getattr(self, f.name), f.metadata))
        registered = type(self).registered_sections()
        if registered:  # every registered section held, defaults made here: equal settings compare equal
            given = self.__dict__.get("registered") or {}
            object.__setattr__(self, "registered", {name: given.get(name) or cls() for name, cls in registered.items()})
        self.check()

    def check(self):
        """Checks that span several fields (none by default)."""

    @classmethod
    def registered_sections(cls):
        """``{name: Section class}`` of the sections that code outside the schema adds
        to this one (a registered model's own settings); read as attributes like fields,
        and kept in the field ``registered``. None by default."""
        return {}

    def __getattr__(self, name):
        # called only for names that are not attributes: the registered sections
        sections = type(self).registered_sections()
        if name in sections:
            return self.__dict__.get("registered", {}).get(name) or sections[name]()
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def to_dict(self):
        """The section as plain JSON values (nested dicts and lists)."""
        return _plain(self)

    def replace(self, **changes):
        """A copy with ``changes``, checked again (registered sections included)."""
        registered = type(self).registered_sections()
        sections = {k: changes.pop(k) for k in list(changes) if k in registered}
        if sections:
            changes["registered"] = {**self.__dict__.get("registered", {}), **sections}
        return dataclasses.replace(self, **changes)


def _plain(value):
    if isinstance(value, Section):
        names = field_names(type(value)) + list(type(value).registered_sections())
        return {name: _plain(getattr(value, name)) for name in names}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def field_names(cls):
    return [f.name for f in dataclasses.fields(cls) if f.metadata.get("setting", True)]


def merge(cls, override, base=None, prefix=""):
    """A ``cls`` section: the JSON object ``override`` on top of the section ``base``
    (default: the defaults), every key checked; :class:`FieldError` names the dotted key
    (``prefix`` + the field).

    Nested sections are merged key by key; other values replace the base's.
    """
    base = cls() if base is None else base
    if not isinstance(override, dict):
        raise ConfigError(f"'{prefix[:-1] or 'config'}' must be an object")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.metadata.get("setting", True)}
    registered = cls.registered_sections()
    changes = {}
    for key, value in override.items():
        if key in registered:
            merged = merge(registered[key], value, getattr(base, key), f"{prefix}{key}.")
            changes["registered"] = {**changes.get("registered", base.registered), key: merged}
            continue
        if key not in fields:
            raise FieldError(prefix + key, closest(key, [*fields, *registered], prefix), unknown=True)
        sub = fields[key].metadata.get("section")
        changes[key] = merge(sub, value, getattr(base, key), f"{prefix}{key}.") if sub is not None else value
    try:
        return dataclasses.replace(base, **changes)
    except FieldError as e:
        raise e.within(prefix) from None


def build(cls, override, where, base=None):
    """:func:`merge`, its errors as :class:`~nengo_actions.errors.ConfigError` naming
    ``where`` (the file or ``--set``) and the dotted key."""
    try:
        return merge(cls, override, base)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


__all__ = ["Section", "FieldError", "setting", "merge", "build", "check_value", "closest", "field_names"]
