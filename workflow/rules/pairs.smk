# Counterfactual pairs (fairgen.data.pairs): one GAN checkpoint draws pairs G(z, c=0), G(z, c=1); the
# pair classifier methods (real_plus_pairs, real_clp, real_clp_dann) train on the real train split
# with them (downstream.smk's train_classifier). Beside them: the post-processing baseline (group
# thresholds on the real classifier), the pair diagnostics, and `snakemake pairs_sweep` (not in
# all): the pair_ratio and clp_lambda sweeps against both baselines in one trade-off figure.
#
# Layout: PAIRS/set (the pair set), PAIRS/diagnostics.json,
#   CLASSIFIERS/real_thresholds/curve.json,
#   PAIRS/sweep/METHOD/KEY=VALUE[,KEY=VALUE]/ (a classifier with those classifier.* values),
#   PAIRS/tradeoff.json, PAIRS/tradeoff.png.
# (PAIRS, PAIR_METHODS, classifier_pair_inputs and pair_args are in downstream.smk.)


import yaml


wildcard_constraints:
    setting=r"[a-z_]+=[A-Za-z0-9_.]+(?:,[a-z_]+=[A-Za-z0-9_.]+)*",


rule generate_pairs:
    input:
        checkpoint=f"results/gan/{config['pairs']['run']}/checkpoint.pt",
    output:
        directory(f"{PAIRS}/set"),
    params:
        cfg=lambda wildcards: cfg_json("generate-pairs"),
        run=config["pairs"]["run"],
    log:
        "results/logs/generate_pairs.log",
    benchmark:
        "results/benchmarks/generate_pairs.tsv"
    threads: config["threads"]
    resources:
        gpu=1,
    conda:
        "../envs/fairgen.yaml"
    shell:
        "fairgen generate-pairs --config-json {params.cfg:q} --run {params.run}"
        " --checkpoint {input.checkpoint} --out-dir {output} > {log} 2>&1"


rule threshold_baseline:
    input:
        array=rules.crops.output.array,
        index=rules.crops.output.index,
        model=f"{CLASSIFIERS}/real/model.pt",
    output:
        f"{CLASSIFIERS}/real_thresholds/curve.json",
    params:
        cfg=lambda wildcards: cfg_json("threshold-baseline"),
    log:
        "results/logs/threshold_baseline.log",
    benchmark:
        "results/benchmarks/threshold_baseline.tsv"
    threads: config["threads"]
    conda:
        "../envs/fairgen.yaml"
    shell:
        "fairgen threshold-baseline --config-json {params.cfg:q} --array {input.array} --index {input.index}"
        " --model {input.model} --out-json {output} > {log} 2>&1"


DIAGNOSED_METHODS = [m for m in config["classifier"]["methods"] if m in ["real", "reweighing", *PAIR_METHODS]]


rule pair_diagnostics:
    input:
        array=rules.crops.output.array,
        index=rules.crops.output.index,
        pairs=rules.generate_pairs.output[0],
        models=expand(f"{CLASSIFIERS}/{{method}}/model.pt", method=DIAGNOSED_METHODS),
    output:
        json=f"{PAIRS}/diagnostics.json",
    params:
        cfg=lambda wildcards: cfg_json("pair-diagnostics"),
        models=lambda wildcards, input: " ".join(f"--classifier {shlex.quote(m)}" for m in input.models),
        cache=f"{PAIRS}/cache",
    log:
        "results/logs/pair_diagnostics.log",
    benchmark:
        "results/benchmarks/pair_diagnostics.tsv"
    threads: config["threads"]
    resources:
        gpu=1,
    conda:
        "../envs/fairgen.yaml"
    shell:
        "fairgen pair-diagnostics --config-json {params.cfg:q} --array {input.array} --index {input.index}"
        " --pairs {input.pairs} {params.models} --cache-dir {params.cache} --out-json {output.json} > {log} 2>&1"


use rule train_classifier as pair_sweep_classifier with:
    input:
        unpack(
            lambda wildcards: classifier_pair_inputs(
                wildcards.method, point_values(wildcards.setting).get("pair_label", config["classifier"]["pair_label"])
            )
        ),
        array=rules.crops.output.array,
        index=rules.crops.output.index,
        synthetic=[],
    output:
        predictions=f"{PAIRS}/sweep/{{method}}/{{setting}}/predictions.parquet",
        metrics=f"{PAIRS}/sweep/{{method}}/{{setting}}/metrics.json",
        model=f"{PAIRS}/sweep/{{method}}/{{setting}}/model.pt",
        curve=f"{PAIRS}/sweep/{{method}}/{{setting}}/curve.json",
    params:
        cfg=lambda wildcards: json.dumps(
            {
                **(base := stage_config(config, "train-classifier")),
                "classifier": {
                    **base["classifier"],
                    **{k: yaml.safe_load(v) for k, v in point_values(wildcards.setting).items()},
                },
            },
            sort_keys=True,
        ),
        synthetic="",
        pairs=lambda wildcards, input: pair_args(input),
        out_dir=f"{PAIRS}/sweep/{{method}}/{{setting}}",
    log:
        "results/logs/pairs_sweep/{method}/{setting}.log",
    benchmark:
        "results/benchmarks/pairs_sweep/{method}/{setting}.tsv"
    wildcard_constraints:
        method="|".join(PAIR_METHODS),


rule pairs_tradeoff:
    input:
        real=f"{CLASSIFIERS}/real/predictions.parquet",
        reweighing=f"{CLASSIFIERS}/reweighing/predictions.parquet",
        thresholds=rules.threshold_baseline.output[0],
        points=[f"{PAIRS}/sweep/{p}/predictions.parquet" for p in pair_sweep_points()],
        synthetic_only=expand(
            f"{CLASSIFIERS}/{{run}}/predictions.parquet",
            run=[r for r in config["classifier"]["methods"] if r in GAN_RUNS],
        ),
    output:
        json=f"{PAIRS}/tradeoff.json",
        png=report(f"{PAIRS}/tradeoff.png", caption="../report/pairs_tradeoff.rst", category="Classifiers"),
    params:
        cfg=lambda wildcards: cfg_json("tradeoff"),
        points=lambda wildcards, input: tradeoff_point_args(input),
    log:
        "results/logs/pairs_tradeoff.log",
    benchmark:
        "results/benchmarks/pairs_tradeoff.tsv"
    threads: 1
    conda:
        "../envs/fairgen.yaml"
    shell:
        "fairgen tradeoff --config-json {params.cfg:q} --real {input.real} --reweighing {input.reweighing}"
        " {params.points} --thresholds {input.thresholds} --out-json {output.json} --out-png {output.png} > {log} 2>&1"


rule pairs_sweep:
    input:
        rules.pairs_tradeoff.output.json,
        rules.pair_diagnostics.output.json,
