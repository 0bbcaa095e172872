import itertools
import json

from fairgen.common import registry, sweep_points
from fairgen.common.config import stage_config


def cfg_json(stage, **names):
    """The config that `fairgen STAGE` reads (fairgen.common.config.STAGE_CONFIG, the one declaration the
    command also applies), as JSON for `fairgen --config-json`; `names` fill its {placeholders}.

    Passing only what the stage reads keeps Snakemake's params-based rerun trigger precise:
    changing the classifier settings does not retrain the GAN.
    """
    return json.dumps(stage_config(config, stage, **names), sort_keys=True)


DATA = "results/data"


def has_comparison():
    """Whether `fairgen compare` has something to do: the real baseline and another method."""
    methods = config["classifier"]["methods"]
    return "real" in methods and len(methods) > 1


COMPARISON = ["results/classifiers/comparison.parquet", "results/classifiers/comparison.csv"]


def final_targets():
    return [
        f"{DATA}/crops.npy",
        f"{DATA}/index.parquet",
        *(f"results/gan/{run}/checkpoint.pt" for run in config["gan"]["runs"]),
        "results/quality/quality.json",
        "results/quality/summary.tsv",
        "results/audit/report.html",
        "results/classifiers/metrics_table.parquet",
        "results/classifiers/metrics_table.csv",
        *(COMPARISON if has_comparison() else []),
        *(zoo_targets() if config["zoo"]["in_all"] else []),
    ]


# --- seed-GAN zoo (workflow/rules/zoo.smk) ---
ZOO = "results/zoo"


def zoo_targets():
    return [f"{ZOO}/report.html", f"{ZOO}/summary.json"]


def zoo_run_data(wildcards):
    """The prepared dataset folder of zoo run {model}."""
    return f"{ZOO}/data/{config['zoo'][wildcards.model]['dataset']}"


# --- sweeps (workflow/rules/sweep.smk; its header describes the layout) ---
SWEEP = "results/sweep"
# GAN runs whose model has no fairness term, so gan.lambda_fair does not change them
# (fairgen.common.registry: variant "none").
SWEEP_LAMBDA_FREE_RUNS = set(registry.lambda_free_runs())

for _pair in config["sweep"]["pairs"]:
    if _pair["protected"] == _pair["outcome"]:
        raise ValueError(f"config key 'sweep.pairs': protected and outcome are both {_pair['protected']!r}")


def sweep_overrides(wildcards):
    """The config values of a sweep point, from its {pair} or {point} wildcard; the data rules of a
    pair (wildcard {pair}) also get their own dataset.synthetic_root, beside the main one."""
    if "pair" in wildcards.keys():
        protected, outcome = sweep_points.parse_pair(wildcards.pair)
        root = f"{config['dataset']['synthetic_root'].rstrip('/')}-{wildcards.pair}"
        return {"protected": protected, "outcome": outcome, "dataset": {"synthetic_root": root}}
    point = sweep_points.parse_point(wildcards.point)
    out = {"protected": point["protected"], "outcome": point["outcome"], "seed": point["seed"]}
    if point["lambda_fair"] is not None:
        out["gan"] = {"lambda_fair": point["lambda_fair"]}
    return out


def sweep_cfg(original):
    """Wrap a main rule's `params.cfg` function: the same JSON with the sweep point's values
    merged in, each only where the original already has that key."""

    def merge(base, overrides):
        for key, value in overrides.items():
            if key in base:
                base[key] = merge(base[key], value) if isinstance(value, dict) else value
        return base

    def cfg(wildcards):
        return json.dumps(merge(json.loads(original(wildcards)), sweep_overrides(wildcards)), sort_keys=True)

    return cfg


def sweep_data(wildcards, name):
    """File `name` of the real data a sweep point trains and is audited on: its pair's own (synthetic
    source, a pair other than the main config's) or the main pipeline's."""
    pair = sweep_points.pair_of(wildcards.point)
    own = config["dataset"]["source"] == "synthetic" and pair != sweep_points.format_pair(
        config["protected"], config["outcome"]
    )
    return f"{SWEEP}/{pair}/data/{name}" if own else f"{DATA}/{name}"


def sweep_synthetic(wildcards):
    """The synthetic sets classifier method {method} at {point} trains on (CLASSIFIER_SYNTHETIC's runs;
    a lambda-free run's from the point without lambda)."""
    free = sweep_points.lambda_free_point(wildcards.point)
    runs = [os.path.basename(folder) for folder in CLASSIFIER_SYNTHETIC[wildcards.method]]
    return [f"{SWEEP}/{free if run in SWEEP_LAMBDA_FREE_RUNS else wildcards.point}/synthetic/{run}" for run in runs]


def sweep_metrics():
    """Every classifier metrics.json of the sweep (the aggregate step's input)."""
    out = []
    for pair, seed, method in itertools.product(
        config["sweep"]["pairs"], config["sweep"]["seeds"], config["classifier"]["methods"]
    ):
        runs = [os.path.basename(folder) for folder in CLASSIFIER_SYNTHETIC[method]]
        lams = [None] if all(run in SWEEP_LAMBDA_FREE_RUNS for run in runs) else config["sweep"]["lambda_fair"]
        points = [sweep_points.format_point(pair["protected"], pair["outcome"], seed, lam) for lam in lams]
        out += [f"{SWEEP}/{p}/classifiers/{method}/metrics.json" for p in points]
    return out


# --- the audit (workflow/rules/report.smk) ---
def has_frontier():
    """Whether the data has an oracle frontier (workflow/rules/frontier.smk): the embedded synthetic source."""
    return config["dataset"]["source"] == "synthetic"


def frontier_manifest(wildcards):
    """The dataset manifest the frontier rule reads (an error unless the source is synthetic)."""
    if not has_frontier():
        raise ValueError(
            f"the oracle frontier needs dataset.source 'synthetic' (the config has {config['dataset']['source']!r})"
        )
    return rules.dataset.output.manifest


def audit_benchmarks(wildcards):
    """The benchmark files of the jobs the audit reads from (its run-cost table): each rule's own
    `benchmark:` path (rules.RULE.benchmark), filled with the runs and methods of the config."""

    def bench(rule, **names):
        return expand(str(getattr(rules, rule).benchmark), **names)

    out = bench("dataset") + bench("crops") + bench("quality")
    out += bench("train_gan", run=config["gan"]["runs"]) + bench("generate", run=config["gan"]["runs"])
    out += bench("train_classifier", method=config["classifier"]["methods"])
    out += bench("compare_classifiers") if has_comparison() else []
    out += bench("threshold_baseline") if "real" in config["classifier"]["methods"] else []
    out += bench("generate_pairs") + bench("pair_diagnostics") if uses_pairs() else []
    out += bench("frontier") if has_frontier() else []
    return out


# --- standalone audit of a predictions file (workflow/rules/audit_predictions.smk) ---
def predictions_file(wildcards):
    if not config.get("predictions"):
        raise ValueError(
            "audit_predictions needs a predictions file: snakemake audit_predictions "
            "--config predictions=FILE (CSV or Parquet)"
        )
    return config["predictions"]


# --- counterfactual pairs (workflow/rules/pairs.smk; the pair methods in downstream.smk) ---
def classifier_pair_inputs(method, pair_label):
    """The pair set (and the real classifier that labels it) a classifier method reads."""
    if not registry.method(method).pairs:
        return {}
    out = {"pairs": f"{PAIRS}/set"}
    if registry.method(method).label_model and pair_label == "real_classifier":
        out["label_model"] = f"{CLASSIFIERS}/real/model.pt"
    return out


def pair_args(input):
    """--pairs / --label-model for the shell command, from a rule's named inputs."""
    args = [f"--pairs {shlex.quote(input.pairs)}"] if "pairs" in input.keys() else []
    if "label_model" in input.keys():
        args.append(f"--label-model {shlex.quote(input.label_model)}")
    return " ".join(args)


def uses_pairs():
    """Whether a configured classifier method trains with the counterfactual pairs."""
    return any(m in PAIR_METHODS for m in config["classifier"]["methods"])


def pair_sweep_points():
    """METHOD/POINT of every sweep classifier (pairs.sweep): real_plus_pairs at each pair_label x
    pair_ratio, real_clp and real_clp_dann at each clp_lambda."""
    sw = config["pairs"]["sweep"]
    out = [
        f"real_plus_pairs/pair_label={label},pair_ratio={r:g}" for label in sw["pair_label"] for r in sw["pair_ratio"]
    ]
    out += [f"{m}/clp_lambda={lam:g}" for m in ("real_clp", "real_clp_dann") for lam in sw["clp_lambda"]]
    return out


def point_values(point):
    """{key: value} of a sweep point's path part (values as text: the schema validates them)."""
    return dict(part.split("=", 1) for part in point.split(","))


def point_name(method_point):
    """The tradeoff name of a sweep point: FAMILY@VALUE (the family names the other values)."""
    method, point = method_point.split("/", 1)
    values = point_values(point)
    knob = "pair_ratio" if "pair_ratio" in values else "clp_lambda"
    rest = [f"{k}: {v}" for k, v in values.items() if k != knob]
    return f"{method}[{knob}{'; ' + '; '.join(rest) if rest else ''}]@{values[knob]}"


def tradeoff_point_args(input):
    """--point NAME=FILE for every sweep point and synthetic-only run of the pairs_tradeoff rule."""
    sweep = [f"--point {shlex.quote(f'{point_name(p)}={f}')}" for p, f in zip(pair_sweep_points(), input.points)]
    runs = [f"--point {shlex.quote(f'{os.path.basename(os.path.dirname(f))}={f}')}" for f in input.synthetic_only]
    return " ".join(sweep + runs)
