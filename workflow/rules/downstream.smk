# Downstream: sample a synthetic dataset from each GAN run, train one outcome classifier per
# method (real, reweighing, each GAN run's synthetic set, real + synthetic) and audit all of them
# on the same real test split; combine their metrics into one table.
import shlex

SYNTHETIC = "results/synthetic"
CLASSIFIERS = "results/classifiers"
# the names come from fairgen.common.registry (GAN_RUNS, CLASSIFIER_METHODS there)
GAN_RUNS = registry.gan_run_names()
PAIR_METHODS = registry.pair_methods()
CLASSIFIER_METHODS = registry.method_names()


wildcard_constraints:
    run="|".join(GAN_RUNS),
    method="|".join(CLASSIFIER_METHODS),


# The synthetic set folders each classifier method trains on (none for real/reweighing).
CLASSIFIER_SYNTHETIC = {
    method: [f"{SYNTHETIC}/{run}" for run in registry.synthetic_runs(method, config["classifier"])]
    for method in CLASSIFIER_METHODS
}
PAIRS = "results/pairs"
# classifier keys that only some methods read (the others' params, and so their runs, ignore them)
CLASSIFIER_KEY_USERS = {
    "synthetic_for_mix": ["real_plus_synthetic"],
    "pair_ratio": ["real_plus_pairs"],
    "pair_label": ["real_plus_pairs"],
    "clp_lambda": ["real_clp", "real_clp_dann"],
    "pair_batch_size": ["real_clp", "real_clp_dann"],
    "domain_lambda": ["real_clp_dann"],
    "pair_reweigh": PAIR_METHODS,
}


# Top-level config a classifier depends on, besides its own section.


rule generate:
    input:
        checkpoint="results/gan/{run}/checkpoint.pt",
    output:
        directory(f"{SYNTHETIC}/{{run}}"),
    params:
        cfg=lambda wildcards: cfg_json("generate"),
    log:
        "results/logs/generate/{run}.log",
    benchmark:
        "results/benchmarks/generate/{run}.tsv"
    threads: config["threads"]
    resources:
        gpu=1,
    conda:
        "../envs/fairgen.yaml"
    shell:
        "fairgen generate --config-json {params.cfg:q} --run {wildcards.run}"
        " --checkpoint {input.checkpoint} --out-dir {output} > {log} 2>&1"


rule train_classifier:
    input:
        unpack(lambda wildcards: classifier_pair_inputs(wildcards.method, config["classifier"]["pair_label"])),
        array=rules.crops.output.array,
        index=rules.crops.output.index,
        synthetic=lambda wildcards: CLASSIFIER_SYNTHETIC[wildcards.method],
    output:
        predictions=f"{CLASSIFIERS}/{{method}}/predictions.parquet",
        metrics=f"{CLASSIFIERS}/{{method}}/metrics.json",
        model=f"{CLASSIFIERS}/{{method}}/model.pt",
        curve=f"{CLASSIFIERS}/{{method}}/curve.json",
    params:
        # the classifier section without the list of methods (adding a method must not retrain the
        # others) and without synthetic_for_mix unless this is the mixing method
        cfg=lambda wildcards: cfg_json("train-classifier"),
        synthetic=lambda wildcards, input: " ".join(f"--synthetic {shlex.quote(p)}" for p in input.synthetic),
        pairs=lambda wildcards, input: pair_args(input),
        out_dir=f"{CLASSIFIERS}/{{method}}",
    log:
        "results/logs/classifiers/{method}.log",
    benchmark:
        "results/benchmarks/classifiers/{method}.tsv"
    threads: config["threads"]
    resources:
        gpu=1,
    conda:
        "../envs/fairgen.yaml"
    shell:
        "fairgen train-classifier --config-json {params.cfg:q} --method {wildcards.method}"
        " --array {input.array} --index {input.index} {params.synthetic} {params.pairs}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule metrics_table:
    input:
        metrics=expand(f"{CLASSIFIERS}/{{method}}/metrics.json", method=config["classifier"]["methods"]),
    output:
        parquet=report(
            f"{CLASSIFIERS}/metrics_table.parquet",
            caption="../report/downstream_metrics_table.rst",
            category="Classifiers",
            labels={"table": "metrics (Parquet)"},
        ),
        csv=report(
            f"{CLASSIFIERS}/metrics_table.csv",
            caption="../report/downstream_metrics_table.rst",
            category="Classifiers",
            labels={"table": "metrics (CSV)"},
        ),
    params:
        cfg=lambda wildcards: cfg_json("metrics-table"),
    log:
        "results/logs/metrics_table.log",
    benchmark:
        "results/benchmarks/metrics_table.tsv"
    threads: 1
    conda:
        "../envs/fairgen.yaml"
    shell:
        "fairgen metrics-table --config-json {params.cfg:q} --metrics {input.metrics} --out-parquet {output.parquet}"
        " --out-csv {output.csv} > {log} 2>&1"


rule compare_classifiers:
    input:
        predictions=expand(rules.train_classifier.output.predictions, method=config["classifier"]["methods"]),
    output:
        parquet=report(
            f"{CLASSIFIERS}/comparison.parquet",
            caption="../report/downstream_comparison.rst",
            category="Classifiers",
            labels={"table": "paired comparison with real (Parquet)"},
        ),
        csv=report(
            f"{CLASSIFIERS}/comparison.csv",
            caption="../report/downstream_comparison.rst",
            category="Classifiers",
            labels={"table": "paired comparison with real (CSV)"},
        ),
    params:
        cfg=lambda wildcards: cfg_json("compare"),
    log:
        "results/logs/compare_classifiers.log",
    benchmark:
        "results/benchmarks/compare_classifiers.tsv"
    threads: 1
    conda:
        "../envs/fairgen.yaml"
    shell:
        "fairgen compare --config-json {params.cfg:q} --predictions {input.predictions}"
        " --out-parquet {output.parquet} --out-csv {output.csv} > {log} 2>&1"
