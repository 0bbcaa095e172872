import json


def cfg_json(*sections):
    """The config sections a rule depends on, as JSON for `fairgen --config-json`.

    Passing only the relevant sections keeps Snakemake's params-based rerun trigger precise:
    changing the classifier settings does not retrain the GAN.
    """
    return json.dumps({k: config[k] for k in sections if k in config}, sort_keys=True)


DATA = "results/data"


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
        *(zoo_targets() if config["zoo"]["in_all"] else []),
    ]


# --- seed-GAN zoo (workflow/rules/zoo.smk) ---
ZOO = "results/zoo"


def zoo_targets():
    return [f"{ZOO}/report.html", f"{ZOO}/summary.json"]


def zoo_cfg(zoo_keys, top=("seed",), eval_keys=None):
    """Like cfg_json: the top-level keys and the `zoo` keys (and `zoo.eval` keys) a zoo rule depends on."""
    zoo = {k: config["zoo"][k] for k in zoo_keys}
    if eval_keys is not None:
        zoo["eval"] = {k: config["zoo"]["eval"][k] for k in eval_keys}
    return json.dumps({**{k: config[k] for k in top if k in config}, "zoo": zoo}, sort_keys=True)


def zoo_run_data(wildcards):
    """The prepared dataset folder of zoo run {model}."""
    return f"{ZOO}/data/{config['zoo'][wildcards.model]['dataset']}"
