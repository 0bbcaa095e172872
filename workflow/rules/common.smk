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
    ]
