import itertools
import json

from fairgen.config import stage_config


def cfg_json(stage, **names):
    """The config that `fairgen STAGE` reads (fairgen.config.STAGE_CONFIG, the one declaration the
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
# (fairgen.training.fairness_run.RUN_VARIANTS: variant "none"; tests/test_sweep.py checks this).
SWEEP_LAMBDA_FREE_RUNS = {"acgan"}

for _pair in config["sweep"]["pairs"]:
    if _pair["protected"] == _pair["outcome"]:
        raise ValueError(f"config key 'sweep.pairs': protected and outcome are both {_pair['protected']!r}")


def sweep_overrides(wildcards):
    """The config values of a sweep point, from its {pair} or {point} wildcard; the data rules of a
    pair (wildcard {pair}) also get their own dataset.synthetic_root, beside the main one."""
    point = wildcards.point if "point" in wildcards.keys() else wildcards.pair
    pair, *rest = point.split("/")
    protected, outcome = pair.split("-")
    out = {"protected": protected, "outcome": outcome}
    if "pair" in wildcards.keys():
        out["dataset"] = {"synthetic_root": f"{config['dataset']['synthetic_root'].rstrip('/')}-{pair}"}
    for part in rest:
        if part.startswith("s"):
            out["seed"] = int(part[1:])
        else:
            out["gan"] = {"lambda_fair": float(part[1:])}
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
    pair = wildcards.point.split("/")[0]
    own = config["dataset"]["source"] == "synthetic" and pair != f"{config['protected']}-{config['outcome']}"
    return f"{SWEEP}/{pair}/data/{name}" if own else f"{DATA}/{name}"


def sweep_synthetic(wildcards):
    """The synthetic sets classifier method {method} at {point} trains on (CLASSIFIER_SYNTHETIC's runs;
    a lambda-free run's from the point without lambda)."""
    pair, seed = wildcards.point.split("/")[:2]
    runs = [os.path.basename(folder) for folder in CLASSIFIER_SYNTHETIC[wildcards.method]]
    return [
        f"{SWEEP}/{pair}/{seed}/synthetic/{run}" if run in SWEEP_LAMBDA_FREE_RUNS else f"{SWEEP}/{wildcards.point}/synthetic/{run}"
        for run in runs
    ]


def sweep_metrics():
    """Every classifier metrics.json of the sweep (the aggregate step's input)."""
    out = []
    for pair, seed, method in itertools.product(
        config["sweep"]["pairs"], config["sweep"]["seeds"], config["classifier"]["methods"]
    ):
        point = f"{pair['protected']}-{pair['outcome']}/s{seed}"
        runs = [os.path.basename(folder) for folder in CLASSIFIER_SYNTHETIC[method]]
        if all(run in SWEEP_LAMBDA_FREE_RUNS for run in runs):
            points = [point]
        else:  # a lambda_fair value as it appears in paths: 1.0 -> 1, 0.5 -> 0.5
            points = [f"{point}/l{float(lam):g}" for lam in config["sweep"]["lambda_fair"]]
        out += [f"{SWEEP}/{p}/classifiers/{method}/metrics.json" for p in points]
    return out


# --- standalone audit of a predictions file (workflow/rules/audit_predictions.smk) ---
def predictions_file(wildcards):
    if not config.get("predictions"):
        raise ValueError("audit_predictions needs a predictions file: snakemake audit_predictions "
                         "--config predictions=FILE (CSV or Parquet)")
    return config["predictions"]
