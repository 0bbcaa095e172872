"""The one registry of names: GAN runs, classifier methods, zoo runs and zoo datasets.

Every place that lists these names reads them from here: the CLI's ``choices``, the enums of the
config schema (filled in by :func:`fairgen.common.config.load_schema` where the YAML says
``x-registry: LIST``), the Snakefile's wildcard constraints and lists (workflow/rules/*.smk), the
sweep's lambda-free runs, ``fairgen.stages.train_gan.RUN_VARIANTS``,
``fairgen.eval.classifier.METHODS``, ``fairgen.eval.zoo.RUNS`` and ``fairgen.data.zoo_data.DATASETS``.
Adding a run or method here (and its code) adds it everywhere; tests/test_registry.py checks
that no list holds a name the registry lacks, or lacks one it holds.

This module imports only :mod:`fairgen.common.errors` (it belongs to the lowest layer).
"""

from __future__ import annotations

from dataclasses import dataclass

from fairgen.common.errors import ConfigError


@dataclass(frozen=True)
class GanRun:
    """A Fairness GAN run (``gan.runs``): its model variant (the fairness term of
    :class:`~fairgen.models.fairness_gan.FairnessGAN`: ``dp``, ``eqopp`` or ``none``)."""

    name: str
    variant: str

    @property
    def lambda_free(self) -> bool:
        """Whether ``gan.lambda_fair`` leaves the run unchanged (its model has no fairness term)."""
        return self.variant == "none"


@dataclass(frozen=True)
class ClassifierMethod:
    """A downstream classifier method (``classifier.methods``).

    ``synthetic``: the GAN runs whose synthetic sets it trains on; ``synthetic_key``: a
    ``classifier`` config key naming one more run whose set it trains on (real_plus_synthetic:
    ``synthetic_for_mix``); ``pairs``: it reads the counterfactual pair set; ``label_model``: it
    also reads the real classifier to label the pairs (when ``classifier.pair_label`` is
    ``real_classifier``); ``weights``: it weights the real train rows (Kamiran & Calders).
    """

    name: str
    synthetic: tuple[str, ...] = ()
    synthetic_key: str | None = None
    pairs: bool = False
    label_model: bool = False
    weights: bool = False


@dataclass(frozen=True)
class ZooRun:
    """A seed-GAN zoo run (``zoo.runs``): its model (a name in ``fairgen.models``) and the dataset
    family it trains on (``zoo.<run>.dataset`` is one of that family's datasets)."""

    name: str
    model: str
    family: str


GAN_RUNS: tuple[GanRun, ...] = (
    GanRun("fgan_dp", "dp"),
    GanRun("fgan_eqopp", "eqopp"),
    GanRun("acgan", "none"),
)

CLASSIFIER_METHODS: tuple[ClassifierMethod, ...] = (
    ClassifierMethod("real"),
    ClassifierMethod("reweighing", weights=True),
    *(ClassifierMethod(run.name, synthetic=(run.name,)) for run in GAN_RUNS),
    ClassifierMethod("real_plus_synthetic", synthetic_key="synthetic_for_mix"),
    ClassifierMethod("real_plus_pairs", pairs=True, label_model=True),
    ClassifierMethod("real_clp", pairs=True),
    ClassifierMethod("real_clp_dann", pairs=True),
)

#: zoo dataset -> its family (models and evaluation classifiers are shared within a family)
ZOO_DATASETS: dict[str, str] = {"digits": "digits", "mnist": "digits", "cifar_standin": "cifar", "cifar10": "cifar"}

ZOO_RUNS: tuple[ZooRun, ...] = (
    ZooRun("vanilla", "vanilla", "digits"),
    ZooRun("dcgan", "dcgan", "digits"),
    ZooRun("cgan", "cgan", "digits"),
    ZooRun("acgan", "acgan", "cifar"),
    ZooRun("acgan_digits", "acgan", "digits"),
)


def gan_run_names() -> list[str]:
    return [run.name for run in GAN_RUNS]


def method_names() -> list[str]:
    return [method.name for method in CLASSIFIER_METHODS]


def zoo_run_names() -> list[str]:
    return [run.name for run in ZOO_RUNS]


def zoo_dataset_names() -> list[str]:
    return list(ZOO_DATASETS)


def gan_run(name: str) -> GanRun:
    """The GAN run ``name`` (ConfigError naming the known ones otherwise)."""
    for run in GAN_RUNS:
        if run.name == name:
            return run
    raise ConfigError(f"unknown GAN run '{name}'; choose one of {', '.join(gan_run_names())}")


def method(name: str) -> ClassifierMethod:
    """The classifier method ``name`` (ConfigError naming the known ones otherwise)."""
    for m in CLASSIFIER_METHODS:
        if m.name == name:
            return m
    raise ConfigError(f"unknown classifier method '{name}' (one of {', '.join(method_names())})")


def zoo_run(name: str) -> ZooRun:
    """The zoo run ``name`` (ConfigError naming the known ones otherwise)."""
    for run in ZOO_RUNS:
        if run.name == name:
            return run
    raise ConfigError(f"unknown zoo run '{name}'; choose one of {', '.join(zoo_run_names())}")


def run_variants() -> dict[str, str]:
    """GAN run name -> FairnessGAN variant."""
    return {run.name: run.variant for run in GAN_RUNS}


def lambda_free_runs() -> list[str]:
    """The GAN runs ``gan.lambda_fair`` does not change (variant ``none``)."""
    return [run.name for run in GAN_RUNS if run.lambda_free]


def synthetic_methods() -> list[str]:
    """The methods that train on one fixed GAN run's synthetic set alone."""
    return [m.name for m in CLASSIFIER_METHODS if m.synthetic and not m.synthetic_key]


def pair_methods() -> list[str]:
    """The methods that read the counterfactual pair set."""
    return [m.name for m in CLASSIFIER_METHODS if m.pairs]


def synthetic_runs(name: str, classifier_cfg: dict) -> list[str]:
    """The GAN runs whose synthetic sets method ``name`` trains on, under the ``classifier``
    config section ``classifier_cfg`` (for a method with a ``synthetic_key``)."""
    m = method(name)
    return [*m.synthetic, *([classifier_cfg[m.synthetic_key]] if m.synthetic_key else [])]


def zoo_run_datasets(name: str) -> list[str]:
    """The datasets zoo run ``name`` can train on (its family's)."""
    family = zoo_run(name).family
    return [d for d, f in ZOO_DATASETS.items() if f == family]


#: the lists the config schema's ``x-registry`` markers name (``zoo_run_datasets:RUN`` takes a run)
SCHEMA_LISTS = {
    "gan_runs": gan_run_names,
    "classifier_methods": method_names,
    "zoo_runs": zoo_run_names,
    "zoo_datasets": zoo_dataset_names,
}


def schema_list(marker: str) -> list[str]:
    """The names of the schema marker ``x-registry: MARKER`` (see :data:`SCHEMA_LISTS`)."""
    name, _, arg = marker.partition(":")
    if name == "zoo_run_datasets" and arg:
        return zoo_run_datasets(arg)
    if name not in SCHEMA_LISTS or arg:
        raise ConfigError(f"config schema: unknown registry list 'x-registry: {marker}'")
    return SCHEMA_LISTS[name]()


def fill_schema(node):
    """Give every schema node marked ``x-registry: MARKER`` the registry's names as its ``enum``
    (in place; returns ``node``)."""
    if isinstance(node, dict):
        if "x-registry" in node:
            node["enum"] = schema_list(node["x-registry"])
        for value in node.values():
            fill_schema(value)
    elif isinstance(node, list):
        for value in node:
            fill_schema(value)
    return node
