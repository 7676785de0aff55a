"""Neuron types by name: the one parser for the ``neuron_type`` strings in configs.

A config names a neuron type as a string::

    "LIF"
    "LIF(tau_rc=0.05, tau_ref=0.001)"
    "RegularSpiking(LIFRate)"
    "PoissonSpiking(RectifiedLinear(amplitude=0.01))"

that is, a type name from :data:`NEURON_TYPES`, optionally called with literal keyword
arguments (numbers, booleans, strings, lists of numbers) and, for the rate-to-spike
wrappers :data:`WRAPPERS`, with the wrapped rate type as the first argument. The string
is parsed with :mod:`ast` and only these calls and literals are accepted, so a config can
never run code.

This module imports Nengo only (no TensorFlow), so the sweep command can check every
neuron type in a sweep before any trial starts.
"""

from __future__ import annotations

import ast
import difflib

import nengo

from nengo_actions.errors import NeuronTypeError

#: The neuron types a config may name; each is ``nengo.<name>``.
NEURON_TYPES = (
    "SpikingRectifiedLinear",
    "RectifiedLinear",
    "LIF",
    "LIFRate",
    "AdaptiveLIF",
    "AdaptiveLIFRate",
    "Izhikevich",
    "Sigmoid",
    "Tanh",
)
#: Wrappers that turn a rate type into a spiking one: ``RegularSpiking(LIFRate)``.
WRAPPERS = ("RegularSpiking", "PoissonSpiking", "StochasticSpiking")

#: Examples shown in error messages.
EXAMPLES = ("LIF", "LIF(tau_rc=0.05)", "RegularSpiking(LIFRate)", "PoissonSpiking(RectifiedLinear)")


def valid_names():
    """A one-line description of what a neuron type string may name."""
    return (
        f"valid types: {', '.join(NEURON_TYPES)}; wrappers of a rate type: "
        f"{', '.join(w + '(<rate type>)' for w in WRAPPERS)}; e.g. {', '.join(EXAMPLES)}"
    )


def _fail(text, why, name=None):
    hint = ""
    if name is not None:
        names = NEURON_TYPES + WRAPPERS
        match = [n for n in names if n.lower() == name.lower()]
        match = match or difflib.get_close_matches(name, names, n=1, cutoff=0.5)
        hint = f" (did you mean '{match[0]}'?)" if match else ""
    raise NeuronTypeError(f"neuron type {text!r}: {why}{hint}; {valid_names()}")


def _literal(text, node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        _fail(text, f"argument {ast.unparse(node)!r} is not a literal value")


def _build(text, node):
    if isinstance(node, ast.Name):
        name, args, keywords = node.id, [], []
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name, args, keywords = node.func.id, node.args, node.keywords
    else:
        _fail(text, f"expected a type name or a call such as LIF(tau_rc=0.02), got {ast.unparse(node)!r}")
    if name not in NEURON_TYPES + WRAPPERS:
        _fail(text, f"unknown neuron type '{name}'", name)
    kwargs = {}
    for kw in keywords:
        if kw.arg is None:
            _fail(text, "'**' arguments are not allowed")
        kwargs[kw.arg] = _literal(text, kw.value)
    cls = getattr(nengo, name)
    if name in WRAPPERS:
        if len(args) != 1:
            _fail(text, f"{name} wraps exactly one rate type, e.g. {name}(LIFRate)")
        base = _build(text, args[0])
        if base.spiking:
            rate = {"LIF": "LIFRate", "AdaptiveLIF": "AdaptiveLIFRate", "SpikingRectifiedLinear": "RectifiedLinear"}
            suggestion = rate.get(type(base).__name__)
            _fail(
                text,
                f"{name} needs a rate type, but {type(base).__name__} is spiking"
                + (f" (use {name}({suggestion}))" if suggestion else ""),
            )
        args = [base]
    elif args:
        _fail(text, f"{name} takes keyword arguments only, e.g. {name}(amplitude=1.0)")
    try:
        return cls(*args, **kwargs)
    except (TypeError, ValueError) as e:  # nengo's ValidationError is a ValueError
        _fail(text, f"invalid arguments for {name}: {e}")


def parse_neuron_type(text):
    """Parse a neuron type string into a Nengo neuron type instance.

    Parameters
    ----------
    text : str or nengo.neurons.NeuronType
        A type name such as ``"LIF"``, a call with keyword arguments such as
        ``"LIF(tau_rc=0.05)"``, or a wrapper of a rate type such as
        ``"RegularSpiking(LIFRate)"``. A neuron type instance is returned as it is.

    Returns
    -------
    nengo.neurons.NeuronType
        A new instance (neuron types hold no state, but each call gives a fresh one).

    Raises
    ------
    NeuronTypeError
        For an unknown name, a spiking type inside a wrapper, a non-literal argument or
        arguments the type does not take; the message lists the valid names.
    """
    if isinstance(text, nengo.neurons.NeuronType):
        return text
    if not isinstance(text, str):
        _fail(repr(text), "expected a string")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        _fail(text, "not a type name or call")
    return _build(text, tree.body)


def neuron_type_name(neuron_type):
    """The string :func:`parse_neuron_type` reads back into an equal type (``repr``)."""
    return repr(parse_neuron_type(neuron_type)).replace("base_type=", "")


def is_spiking(text):
    """Whether the named neuron type emits spikes."""
    return bool(parse_neuron_type(text).spiking)
