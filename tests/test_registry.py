"""One registry of names (fairgen.common.registry): every list of GAN runs, classifier methods, zoo runs and
zoo datasets (the CLI's choices, the schema's enums, the package's tables, the Snakefile's wildcard
constraints) holds exactly the registry's names, so a name added in one place only fails here."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import pytest
import yaml

from fairgen import cli
from fairgen.common import config, registry

ROOT = Path(__file__).resolve().parent.parent

GAN_RUNS = registry.gan_run_names()
METHODS = registry.method_names()
ZOO_RUNS = registry.zoo_run_names()
ZOO_DATASETS = registry.zoo_dataset_names()
ALL_NAMES = set(GAN_RUNS) | set(METHODS) | set(ZOO_RUNS) | set(ZOO_DATASETS)


def test_registry_is_consistent():
    for names in (GAN_RUNS, METHODS, ZOO_RUNS, ZOO_DATASETS):
        assert len(names) == len(set(names)) and names
    assert {run.variant for run in registry.GAN_RUNS} <= {"dp", "eqopp", "none"}
    assert registry.lambda_free_runs() == [r.name for r in registry.GAN_RUNS if r.variant == "none"]
    for m in registry.CLASSIFIER_METHODS:
        assert set(m.synthetic) <= set(GAN_RUNS), m
        assert not m.label_model or m.pairs, m  # the real classifier labels pairs only
    assert registry.synthetic_runs("real_plus_synthetic", {"synthetic_for_mix": "acgan"}) == ["acgan"]
    assert registry.synthetic_runs("fgan_dp", {}) == ["fgan_dp"] and registry.synthetic_runs("real", {}) == []
    for run in registry.ZOO_RUNS:
        assert registry.zoo_run_datasets(run.name), run
    for lookup, bad in ((registry.gan_run, "nope"), (registry.method, "nope"), (registry.zoo_run, "nope")):
        with pytest.raises(config.ConfigError, match="nope"):
            lookup(bad)


def test_package_tables_are_the_registry():
    from fairgen.data import zoo_data
    from fairgen.eval import classifier as classifiers
    from fairgen.eval import zoo
    from fairgen.models import available
    from fairgen.stages.train_gan import RUN_VARIANTS

    assert RUN_VARIANTS == {r.name: r.variant for r in registry.GAN_RUNS}
    assert list(classifiers.METHODS) == METHODS
    assert set(classifiers.SYNTHETIC_METHODS) == set(GAN_RUNS)
    assert list(classifiers.PAIR_METHODS) == [m.name for m in registry.CLASSIFIER_METHODS if m.pairs]
    assert list(zoo.RUNS) == ZOO_RUNS and set(zoo.RUN_SHAPE) == set(ZOO_RUNS)
    assert {zoo.MODEL_OF[r] for r in ZOO_RUNS} <= set(available())
    assert list(zoo_data.DATASETS) == ZOO_DATASETS


def _choices() -> dict[tuple[str, str], list]:
    """(command, option) -> choices of every option of the CLI that has them."""
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {(name, action.option_strings[-1]): list(action.choices)
            for name, parser in sub.choices.items() for action in parser._actions
            if action.choices and action.option_strings}


def test_cli_choices_are_the_registry():
    want = {("train-gan", "--run"): GAN_RUNS, ("generate", "--run"): GAN_RUNS, ("generate-pairs", "--run"): GAN_RUNS,
            ("train-classifier", "--method"): METHODS, ("zoo-data", "--dataset"): ZOO_DATASETS,
            ("zoo-train", "--model"): ZOO_RUNS, ("zoo-evaluate", "--model"): ZOO_RUNS}
    got = _choices()
    assert {k: got.get(k) for k in want} == want
    # no other option lists a registry name: such a list would be a second, unchecked copy
    others = {k: v for k, v in got.items() if k not in want and ALL_NAMES & {str(c) for c in v}}
    assert others == {}


def _enums(node, path=""):
    """(dotted key, enum) of every enum in a schema (array items as KEY[])."""
    if isinstance(node, dict):
        if "enum" in node:
            yield path, node["enum"]
        for key, sub in node.get("properties", {}).items():
            yield from _enums(sub, f"{path}.{key}".lstrip("."))
        if isinstance(node.get("items"), dict):
            yield from _enums(node["items"], f"{path}[]")


def test_schema_enums_are_the_registry():
    enums = dict(_enums(config.load_schema()))
    want = {"gan.runs[]": GAN_RUNS, "pairs.run": GAN_RUNS, "classifier.synthetic_for_mix": GAN_RUNS,
            "classifier.methods[]": METHODS, "zoo.runs[]": ZOO_RUNS,
            **{f"zoo.{run}.dataset": registry.zoo_run_datasets(run) for run in ZOO_RUNS}}
    assert {k: enums.get(k) for k in want} == want
    assert {k: v for k, v in enums.items() if k not in want and ALL_NAMES & {str(x) for x in v}} == {}
    # the YAML itself lists none of them (Snakemake's validate reads it as it is; the Snakefile then
    # validates against fairgen.common.config.load_schema's filled copy)
    raw = dict(_enums(yaml.safe_load(config.SCHEMA_PATH.read_text())))
    assert {k: v for k, v in raw.items() if ALL_NAMES & {str(x) for x in v}} == {}
    # every zoo run has its settings section, and there is no section of a run the registry lacks
    zoo = config.load_schema()["properties"]["zoo"]["properties"]
    assert {k for k, v in zoo.items() if "dataset" in v.get("properties", {})} == set(ZOO_RUNS)
    # the defaults are registry names (validated like any value)
    cfg = config.validate({})
    assert set(cfg["gan"]["runs"]) <= set(GAN_RUNS) and set(cfg["classifier"]["methods"]) <= set(METHODS)
    with pytest.raises(config.ConfigError, match=r"gan\.runs\.0"):
        config.validate({"gan": {"runs": ["fgan_bogus"]}})


@contextlib.contextmanager
def _parsed_workflow(workdir: Path, *configfiles):
    """The repository's Snakefile parsed (no DAG, no jobs) with config/tiny.yaml and ``configfiles``."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, ResourceSettings

    with SnakemakeApi() as api:
        wf = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=ROOT / "Snakefile", workdir=workdir,
                          config_settings=ConfigSettings(configfiles=[ROOT / "config" / "tiny.yaml", *configfiles]))
        yield wf._workflow


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    with _parsed_workflow(tmp_path_factory.mktemp("registry_wf")) as wf:
        yield wf


def _producers(workflow, target: str) -> list[str]:
    return [rule.name for rule in workflow.rules if rule.is_producer(target)]


def test_snakefile_wildcards_accept_exactly_the_registry_names(workflow):
    """Each registry name's target has its rule, and a name outside the registry has none (the rules'
    wildcard constraints are the registry's lists)."""
    kinds = {"results/classifiers/{}/metrics.json": (METHODS, ["train_classifier"]),
             "results/synthetic/{}": (GAN_RUNS, ["generate"]),
             "results/zoo/{}/eval/metrics.json": (ZOO_RUNS, ["zoo_evaluate"]),
             "results/zoo/{}/train/train.json": (ZOO_RUNS, ["zoo_train"]),
             "results/zoo/data/{}/info.json": (ZOO_DATASETS, ["zoo_data"])}
    for pattern, (names, rules) in kinds.items():
        assert {n: _producers(workflow, pattern.format(n)) for n in names} == {n: rules for n in names}, pattern
        for bogus in ("bogus", f"{names[0]}x", f"x{names[0]}"):
            assert _producers(workflow, pattern.format(bogus)) == [], (pattern, bogus)
    # the Snakefile's own lists
    glob = workflow.globals
    assert (glob["GAN_RUNS"], glob["CLASSIFIER_METHODS"]) == (GAN_RUNS, METHODS)
    assert (glob["ZOO_RUNS"], glob["ZOO_DATASETS"]) == (ZOO_RUNS, ZOO_DATASETS)
    assert glob["PAIR_METHODS"] == registry.pair_methods()
    assert glob["SWEEP_LAMBDA_FREE_RUNS"] == set(registry.lambda_free_runs())


def test_snakefile_sweep_wildcards_are_the_point_grammar(workflow):
    """sweep.smk constrains {pair} and {point} by fairgen.common.sweep_points' patterns."""
    from fairgen.common import sweep_points

    good = sweep_points.format_point("Male", "Attractive", 1, 0.5)
    assert _producers(workflow, f"results/sweep/{good}/classifiers/real/metrics.json") == ["sweep_train_classifier"]
    assert _producers(workflow, f"results/sweep/{sweep_points.lambda_free_point(good)}/gan/acgan/checkpoint.pt") == [
        "sweep_train_gan"]
    assert _producers(workflow, "results/sweep/Male-Attractive/data/dataset.json") == ["sweep_dataset"]
    for bad in ("Male-Attractive/1", "Male-Attractive/s1/x0.5", "Male/s1"):
        assert _producers(workflow, f"results/sweep/{bad}/classifiers/real/metrics.json") == [], bad


def test_snakefile_rejects_a_name_outside_the_registry(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("classifier:\n  methods: [real, bogus]\n")
    with pytest.raises(Exception, match=r"classifier\.methods\.1"), _parsed_workflow(tmp_path, bad):
        pass
