"""Load and validate configuration against workflow/schemas/config.schema.yaml.

The same schema file is used by the Snakefile (``snakemake.utils.validate``) and by the CLI,
so both reject an unknown key or a wrong type with the key's dotted name.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import NamedTuple

import yaml

from fairgen.common.errors import ConfigError
from fairgen.common.seeds import STAGE_MODULUS, derive_seed

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def load_schema() -> dict:
    """The schema, with the registry's names (fairgen.common.registry) as the enums its ``x-registry`` keys mark."""
    from fairgen.common.registry import fill_schema

    if not SCHEMA_PATH.exists():
        raise ConfigError(f"config schema not found at {SCHEMA_PATH} (install fairgen from its source tree)")
    return fill_schema(yaml.safe_load(SCHEMA_PATH.read_text()))


def _validator_with_defaults(schema: dict):
    import jsonschema

    base = jsonschema.Draft202012Validator

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema)

    cls = jsonschema.validators.extend(base, {"properties": set_defaults})
    return cls(schema)


def _describe(err) -> str:
    key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        unknown = sorted(set(err.instance) - set(allowed))
        where = "" if key == "(top level)" else f" in '{key}'"
        return f"unknown config key(s) {', '.join(repr(u) for u in unknown)}{where}; allowed: {', '.join(allowed)}"
    return f"config key '{key}': {err.message}"


def validate(cfg: dict) -> dict:
    """Return a validated deep copy of ``cfg`` with schema defaults filled in."""
    cfg = copy.deepcopy(cfg or {})
    if not isinstance(cfg, dict):
        raise ConfigError("config must be a mapping of keys to values")
    validator = _validator_with_defaults(load_schema())
    # Defaults are filled while validating; run twice so defaults of nested defaults apply.
    for _ in range(2):
        errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
        if errors:
            raise ConfigError("; ".join(_describe(e) for e in errors[:5]))
    return cfg


def parse_override(text: str) -> tuple[list[str], object]:
    """``'gan.steps=100'`` -> (['gan', 'steps'], 100); values are parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key.sub=value")
    key, value = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(value)


def load(path: str | os.PathLike | None = None, overrides: list[str] | None = None,
         json_text: str | None = None) -> dict:
    """Load a YAML config file (or JSON text), apply ``key.sub=value`` overrides, validate."""
    cfg: dict = {}
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"config file not found: {p}")
        try:
            cfg = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: invalid YAML ({e})") from None
    if json_text is not None:
        try:
            cfg = merge(cfg, json.loads(json_text))
        except json.JSONDecodeError as e:
            raise ConfigError(f"--config-json: invalid JSON ({e.msg})") from None
    for item in overrides or []:
        keys, value = parse_override(item)
        node = cfg
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{item}': '{k}' is not a section")
        node[keys[-1]] = value
    return validate(cfg)


def merge(a: dict, b: dict) -> dict:
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class Reads(NamedTuple):
    """The configuration one stage reads: top-level keys, whole sections or ``section.key`` parts
    (``{name}`` is filled from the stage's argument of that name, e.g. ``zoo.{model}``), less the
    ``skip`` parts of those sections that it does not read."""

    keys: tuple[str, ...]
    skip: tuple[str, ...] = ()


#: What each stage (a ``fairgen`` command; its Snakemake rule has the same name with ``_``) reads.
#: The command keeps only these after validation (:func:`stage_config`) and the rule passes exactly
#: these (workflow/rules/common.smk: ``cfg_json``), so a stage never sees a value its rule did not pass.
STAGE_CONFIG: dict[str, Reads] = {
    "dataset": Reads(("seed", "protected", "outcome", "dataset")),
    "crops": Reads(("seed", "dataset", "crops")),
    "train-gan": Reads(("seed", "device", "threads", "precision", "protected", "outcome", "gan"), skip=("gan.runs",)),
    "generate": Reads(("seed", "device", "threads", "precision", "protected", "outcome", "generate")),
    "train-classifier": Reads(("seed", "device", "threads", "precision", "protected", "outcome", "classifier"),
                              skip=("classifier.methods",)),
    "relabel": Reads(("seed", "device", "threads", "precision", "protected", "outcome", "classifier")),
    "metrics-table": Reads(("protected", "outcome")),
    "compare": Reads(("seed", "classifier")),
    "quality": Reads(("seed", "device", "threads", "protected", "outcome", "quality")),
    "audit": Reads(("seed", "protected", "outcome", "dataset", "gan", "classifier", "quality")),
    "zoo-data": Reads(("seed", "zoo.data_root", "zoo.download", "zoo.mnist_root", "zoo.cifar10_root",
                       "zoo.cifar_standin")),
    "zoo-classifier": Reads(("seed", "device", "threads", "zoo.eval.holdout_fraction")),
    "zoo-train": Reads(("seed", "device", "threads", "precision", "zoo.{model}", "zoo.log_every", "zoo.sample_every",
                        "zoo.checkpoint_every")),
    "zoo-evaluate": Reads(("seed", "device", "threads", "zoo.{model}", "zoo.eval")),
    "zoo-report": Reads(("seed", "zoo.runs")),
    "sweep-aggregate": Reads(()),
    "sweep-report": Reads(()),
    "frontier": Reads(("protected", "outcome")),
    "config-readme": Reads(()),
    "audit-predictions": Reads(("seed", "audit_predictions")),
    "example-predictions": Reads(()),
    "generate-pairs": Reads(("seed", "device", "threads", "precision", "protected", "outcome", "pairs"),
                            skip=("pairs.sweep",)),
    "threshold-baseline": Reads(("seed", "device", "threads", "precision", "protected", "outcome", "classifier"),
                                skip=("classifier.methods",)),
    "pair-diagnostics": Reads(("seed", "device", "threads", "precision", "protected", "outcome", "classifier", "quality"),
                              skip=("classifier.methods",)),
    "tradeoff": Reads(("seed", "classifier"), skip=("classifier.methods",)),
}


def stage_config(cfg: dict, stage: str, **names) -> dict:
    """The part of a validated ``cfg`` that ``stage`` reads (:data:`STAGE_CONFIG`), as a new dict."""
    if stage not in STAGE_CONFIG:
        raise ConfigError(f"no config declaration for stage '{stage}'")
    reads = STAGE_CONFIG[stage]
    out: dict = {}
    for key in reads.keys:
        *parents, leaf = key.format(**names).split(".")
        src, dst = cfg, out
        for part in parents:
            src, dst = src.get(part, {}), dst.setdefault(part, {})
        if leaf in src:
            dst[leaf] = copy.deepcopy(src[leaf])
    for key in reads.skip:
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.get(part, {})
        node.pop(leaf, None)
    return out


def seed_for(cfg: dict, stage: str) -> int:
    """The seed of ``stage``: :func:`fairgen.common.seeds.derive_seed` from the config's ``seed``
    with the 31-bit stage modulus (so stages do not share streams)."""
    return derive_seed(int(cfg.get("seed", 0)), stage, STAGE_MODULUS)


def schema_markdown() -> str:
    """config/README.md, generated from the schema (``fairgen config-readme --out config/README.md``)."""
    schema = load_schema()
    lines = [
        "# Configuration",
        "",
        "<!-- Generated from workflow/schemas/config.schema.yaml by `fairgen config-readme --out config/README.md`;",
        "     tests/test_config.py fails when it is out of date. -->",
        "",
        "One schema, `workflow/schemas/config.schema.yaml`, holds every key and its default; Snakemake",
        "(`snakemake.utils.validate`) and every `fairgen` command validate a configuration against it, so",
        "an unknown key, a wrong type or an impossible value fails with the key's dotted name. The",
        "defaults below are what `config/config.yaml` runs (it shows the keys a user most often changes,",
        "each at its default). The presets list only what they change: `config/tiny.yaml` (the",
        "seconds-to-minutes smoke test of the end-to-end tests) and `config/gpu.yaml` (the paper's scale).",
        "Keys under `*.experimental` are research knobs measured not to help",
        "([docs/experiments.md](../docs/experiments.md)); they are off by default.",
        "",
        "| key | type | default | description |",
        "| --- | --- | --- | --- |",
    ]

    def walk(node: dict, prefix: str) -> None:
        for name, sub in node.get("properties", {}).items():
            key = f"{prefix}{name}"
            kind = sub.get("type", "")
            kind = " or ".join(kind) if isinstance(kind, list) else kind
            if "enum" in sub:
                kind = " \\| ".join(f"`{v}`" for v in sub["enum"])
            elif sub.get("type") == "array" and isinstance(sub.get("items"), dict) and "enum" in sub["items"]:
                kind = "list of " + " \\| ".join(f"`{v}`" for v in sub["items"]["enum"])
            bounds = [f"{sym} {sub[b]}" for b, sym in (("minimum", ">="), ("exclusiveMinimum", ">"),
                                                       ("maximum", "<="), ("exclusiveMaximum", "<")) if b in sub]
            if bounds:
                kind += " (" + ", ".join(bounds) + ")"
            if sub.get("type") == "object" and "properties" in sub:
                lines.append(f"| **`{key}`** | section | | {_one_line(sub.get('description', ''))} |")
                walk(sub, key + ".")
                continue
            default = json.dumps(sub["default"]) if "default" in sub else ""
            lines.append(f"| `{key}` | {kind} | `{default}` | {_one_line(sub.get('description', ''))} |")

    walk(schema, "")
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def write_readme(cfg: dict, out: str | None = None) -> None:
    """The ``fairgen config-readme`` command: write :func:`schema_markdown` to ``out`` (or stdout)."""
    text = schema_markdown()
    if out is None:
        print(text, end="")
    else:
        Path(out).write_text(text)


if __name__ == "__main__":
    print(schema_markdown(), end="")
