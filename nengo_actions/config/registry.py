"""The model and dataset types a config may name, each registered once.

As nengo's ``Builder.register`` and NengoDL's ``Converter.register``: every model type
(``model.type``) and dataset (``data.dataset``) is an entry here, and every list of
types, every "is it spiking" and every "which data does it read" is derived from these
entries. A new model is one new module: its builder, its settings (a
:class:`~nengo_actions.config.section.Section`, which configs then take as ``model.<name>``) and
one :func:`register_model` call, made before the config is loaded. Standard library and
:mod:`nengo_actions.config.section` only (configs are checked with it before TensorFlow loads);
builders are named as ``"module:function"`` and imported when built. The shipped types'
settings are declared in :mod:`nengo_actions.config.schema`.
"""

from __future__ import annotations

import dataclasses
import importlib

from nengo_actions.config.section import Section

INPUTS = ("features", "events")
SPLIT_UNITS = ("group", "user", "recording")
#: The trainers (:class:`nengo_actions.engine.trainer.Trainer`) a model type may use, by name:
#: NengoDL's simulator on the Nengo network, or Keras backpropagation through time on a
#: multi-step model whose Nengo network is built from the trained parameters.
TRAINERS = {
    "nengo_dl": "nengo_actions.engine.simulator:Engine",
    "keras_bptt": "nengo_actions.engine.direct:DirectEngine",
}


@dataclasses.dataclass(frozen=True)
class ModelType:
    """A model type.

    Parameters
    ----------
    name : str
        The ``model.type`` value.
    builder : str
        ``"module:function"`` returning a :class:`~nengo_actions.networks.BuiltNetwork`
        when called as ``builder(*sections, args, **options)``: the ``sections`` below,
        a :class:`~nengo_actions.networks.BuildArgs` (sizes, neurons, time) and
        ``options``.
    sections : tuple of str
        Names of the ``model`` sections the builder takes, in order (``("lmu",
        "lmu_spiking")``); their settings are also the parameter files' signature.
    inputs : str
        ``"features"`` (clip features of a store) or ``"events"`` (DVS event frames).
    options : dict
        Keyword arguments the builder gets for this type (one builder, several types).
    spiking_key : str or None
        The ``model.*`` key naming the neuron type that decides whether the model spikes;
        ``None`` with ``always_spiking`` False: a rate model.
    always_spiking : bool
    trainer : str
        The name in :data:`TRAINERS` of the trainer of this type.
    trainer_key : (str, dict) or None
        A ``model.*`` key and ``{value: trainer name}``: the key's value picks another
        trainer than ``trainer`` (``("dvs_conv.method", {"direct": "keras_bptt"})``).
    stages : str or None
        ``"module:function"`` of an event model's layers: called as ``function(section,
        n_classes)`` with the type's first section, it returns the list of
        :class:`~nengo_actions.networks.stages.Stage` that its directly trained model, its
        rate-trained model, its Nengo network and its NIR graph are all built from.
    repeat_keys : (str, str) or None
        ``model.*`` keys of (how many ensembles, neurons each) for a model made of many
        copies of one ensemble; the GUI draws a reduced copy of a large one.
    gui_refusal : str or None
        Why the Nengo GUI cannot show this type (``None``: it can).
    """

    name: str
    builder: str
    sections: tuple = ()
    inputs: str = "features"
    options: dict = dataclasses.field(default_factory=dict)
    spiking_key: str = None
    always_spiking: bool = False
    trainer: str = "nengo_dl"
    trainer_key: tuple = None
    stages: str = None
    repeat_keys: tuple = None
    gui_refusal: str = None

    def __post_init__(self):
        if self.inputs not in INPUTS:
            raise ValueError(f"model type {self.name!r}: inputs must be one of {INPUTS}, got {self.inputs!r}")
        if ":" not in self.builder:
            raise ValueError(f"model type {self.name!r}: builder must be 'module:function', got {self.builder!r}")
        if self.stages is not None and ":" not in self.stages:
            raise ValueError(f"model type {self.name!r}: stages must be 'module:function', got {self.stages!r}")
        if isinstance(self.sections, str) or not all(isinstance(n, str) for n in self.sections):
            raise ValueError(f"model type {self.name!r}: sections must be a tuple of section names, got {self.sections!r}")
        by_value = {}
        if self.trainer_key is not None:
            if not (isinstance(self.trainer_key, tuple) and len(self.trainer_key) == 2 and isinstance(self.trainer_key[1], dict)):
                raise ValueError(f"model type {self.name!r}: trainer_key must be (model key, {{value: trainer}}), "
                                 f"got {self.trainer_key!r}")
            by_value = self.trainer_key[1]
        unknown = [t for t in (self.trainer, *by_value.values()) if t not in TRAINERS]
        if unknown:
            raise ValueError(f"model type {self.name!r}: unknown trainer {unknown[0]!r}; expected one of {tuple(TRAINERS)}")

    def trainer_for(self, model_cfg):
        """The name of the trainer of this type as ``model_cfg`` (a
        :class:`~nengo_actions.config.models.ModelConfig`) configures it."""
        if self.trainer_key is None:
            return self.trainer
        key, by_value = self.trainer_key
        return by_value.get(lookup(model_cfg, key), self.trainer)


@dataclasses.dataclass(frozen=True)
class DatasetType:
    """A dataset.

    Parameters
    ----------
    name : str
        The ``data.dataset`` value.
    inputs : str
        What it gives the models: ``"features"`` (clips through the feature extraction)
        or ``"events"`` (DVS recordings, framed).
    reader : str or None
        Event datasets: ``"module:function"`` called as ``reader(cfg, root, cache_dir,
        allow_truncated=..., progress=...)`` returning ``{"train": EventDataset, "test":
        EventDataset}`` (``root``: ``data.root``; ``cache_dir``: this dataset's sample cache).
    split_unit : str
        What a validation split keeps whole, so one never sits on two sides: ``"group"``
        (UCF101's groups), ``"user"`` or ``"recording"`` (the samples' ``groups`` or
        ``recordings``).
    folds : str or None
        The config section (``"events.sl_animals"``) whose ``fold`` and ``n_folds`` make the
        train and test sides, for a dataset evaluated by cross-validation; ``None``: fixed
        sides.
    """

    name: str
    inputs: str
    reader: str = None
    split_unit: str = "group"
    folds: str = None

    def __post_init__(self):
        if self.inputs not in INPUTS:
            raise ValueError(f"dataset {self.name!r}: inputs must be one of {INPUTS}, got {self.inputs!r}")
        if self.inputs == "events" and (self.reader is None or ":" not in self.reader):
            raise ValueError(f"dataset {self.name!r}: an event dataset needs a reader 'module:function', got {self.reader!r}")
        if self.split_unit not in SPLIT_UNITS:
            raise ValueError(f"dataset {self.name!r}: split_unit must be one of {SPLIT_UNITS}, got {self.split_unit!r}")


MODELS: dict = {}
DATASETS: dict = {}
#: ``{name: Section class}``: the ``model.<name>`` sections that registered models bring.
SECTIONS: dict = {}
#: Keys of the ``model`` section that no registered section may take.
RESERVED_SECTION_NAMES = ("type", "compare", "registered")


def register_model(model_type: ModelType, sections=None):
    """Add a model type; a second registration of a name replaces the first.

    Parameters
    ----------
    model_type : ModelType
    sections : dict or None
        ``{name: Section class}`` of the settings the model brings, each named in
        ``model_type.sections``; configs take them as ``model.<name>`` (checked as the
        schema's sections are) and the builder gets them in ``model_type.sections``'s order.
    """
    sections = dict(sections or {})
    # another type's section name is taken, unless this type shares that very section
    # (the two LMU types, the two DVS nets)
    others = {n for m in MODELS.values() if m.name != model_type.name for n in m.sections}
    taken = {n for n in others if n not in SECTIONS or SECTIONS[n] is not sections.get(n)}
    for name, cls in sections.items():
        if name not in model_type.sections:
            raise ValueError(f"model type {model_type.name!r}: section {name!r} is not in its sections {model_type.sections}")
        if name in taken or name in RESERVED_SECTION_NAMES or not name.isidentifier():
            raise ValueError(f"model type {model_type.name!r}: {name!r} cannot name a section (taken or reserved)")
        if not (isinstance(cls, type) and issubclass(cls, Section)):
            raise ValueError(f"model type {model_type.name!r}: section {name!r} must be a nengo_actions.config.section.Section")
    SECTIONS.update(sections)
    MODELS[model_type.name] = model_type
    return model_type


def registered_sections():
    """A copy of :data:`SECTIONS`."""
    return dict(SECTIONS)


def register_dataset(dataset: DatasetType):
    DATASETS[dataset.name] = dataset
    return dataset


def model_names(inputs=None):
    """The registered model types, in order; with ``inputs``, those reading it
    (``"features"`` or ``"events"``)."""
    return tuple(name for name, m in MODELS.items() if inputs is None or m.inputs == inputs)


def dataset_names():
    return tuple(DATASETS)


def load_function(spec):
    """The function ``"module:function"`` names (its module imported now)."""
    module, function = spec.split(":")
    return getattr(importlib.import_module(module), function)


def events_datasets():
    """The names of the registered event datasets."""
    return tuple(name for name, d in DATASETS.items() if d.inputs == "events")


def lookup(value, dotted):
    """``value.a.b`` for ``dotted = "a.b"`` (a key of a config section)."""
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def trainer(name, model_cfg):
    """The trainer class of model type ``name`` as ``model_cfg`` configures it (its module
    imported now, TensorFlow with it)."""
    return load_function(TRAINERS[MODELS[name].trainer_for(model_cfg)])


def trains_directly(name, model_cfg):
    """Whether ``name`` as configured (``model_cfg``: a
    :class:`~nengo_actions.config.models.ModelConfig`) is trained with spikes over time."""
    return MODELS[name].trainer_for(model_cfg) == "keras_bptt"


_READERS = "nengo_actions.data.prepare"
for _entry in (
    DatasetType("ucf101", "features"),
    DatasetType("synthetic_actions", "features"),
    DatasetType("dvs128_gesture", "events", f"{_READERS}:open_dvs128_gesture", split_unit="user"),
    DatasetType("sl_animals", "events", f"{_READERS}:open_sl_animals", split_unit="recording",
                folds="events.sl_animals"),
    DatasetType("synthetic_gestures", "events", f"{_READERS}:open_synthetic_gestures", split_unit="user"),
):
    register_dataset(_entry)


__all__ = ["ModelType", "DatasetType", "MODELS", "DATASETS", "SECTIONS", "register_model", "register_dataset",
           "registered_sections", "model_names", "dataset_names", "events_datasets", "trainer", "trains_directly", "lookup",
           "load_function", "SPLIT_UNITS", "TRAINERS"]
