# Sweeps (`snakemake sweep`; not part of `all`): the seeds x gan.lambda_fair values x (protected,
# outcome) pairs of the config's `sweep` section. Every point is its own set of jobs, so a
# cluster runs them in parallel; fairgen sweep-aggregate then gives mean and spread across seeds per
# (pair, lambda_fair, method) and fairgen sweep-report renders them.
#
# The jobs are the main rules re-used (`use rule X as sweep_X with:`): the same fairgen
# subcommands and the same config sections as in the main pipeline, with the point's values
# (protected, outcome, seed, gan.lambda_fair) merged into the JSON config a rule passes, and only
# into the keys that rule already depends on (so e.g. the data rules never see the seed).
#
# Layout (SWEEP = results/sweep; PAIR = Protected-Outcome, e.g. Male-Attractive):
#   SWEEP/PAIR/data/                                dataset + crops of a pair (synthetic source and a
#                                                   pair other than the main config's; else results/data)
#   SWEEP/PAIR/sSEED/{gan,synthetic,classifiers}/X           runs and methods lambda_fair does not
#                                                             affect (run acgan; methods real,
#                                                             reweighing, acgan)
#   SWEEP/PAIR/sSEED/lLAMBDA/{gan,synthetic,classifiers}/X   those it does (fgan_dp, fgan_eqopp,
#                                                             real_plus_synthetic with an fgan set)
#   SWEEP/runs.parquet, summary.parquet, summary.csv, report.html
# The point grammar (PAIR/sSEED[/lLAMBDA]) is fairgen.common.sweep_points, which formats and parses points here
# (common.smk) and in fairgen.eval.sweep.parse_metrics_path.
# (SWEEP, SWEEP_LAMBDA_FREE_RUNS and the sweep_* functions are in common.smk)


wildcard_constraints:
    pair=sweep_points.PAIR_PATTERN,
    point=sweep_points.POINT_PATTERN,


rule sweep:
    input:
        f"{SWEEP}/summary.csv",
        f"{SWEEP}/report.html",


use rule dataset as sweep_dataset with:
    output:
        manifest=f"{SWEEP}/{{pair}}/data/dataset.json",
    params:
        cfg=sweep_cfg(rules.dataset.params.cfg),
    log:
        "results/logs/sweep/{pair}/dataset.log",
    benchmark:
        "results/benchmarks/sweep/{pair}/dataset.tsv"


use rule crops as sweep_crops with:
    input:
        manifest=rules.sweep_dataset.output.manifest,
    output:
        array=f"{SWEEP}/{{pair}}/data/crops.npy",
        index=f"{SWEEP}/{{pair}}/data/index.parquet",
        summary=f"{SWEEP}/{{pair}}/data/crops_summary.json",
        previews=directory(f"{SWEEP}/{{pair}}/data/previews"),
    params:
        cfg=sweep_cfg(rules.crops.params.cfg),
    log:
        "results/logs/sweep/{pair}/crops.log",
    benchmark:
        "results/benchmarks/sweep/{pair}/crops.tsv"


use rule train_gan as sweep_train_gan with:
    input:
        array=lambda wildcards: sweep_data(wildcards, "crops.npy"),
        index=lambda wildcards: sweep_data(wildcards, "index.parquet"),
    output:
        checkpoint=f"{SWEEP}/{{point}}/gan/{{run}}/checkpoint.pt",
        log_jsonl=f"{SWEEP}/{{point}}/gan/{{run}}/log.jsonl",
        summary=f"{SWEEP}/{{point}}/gan/{{run}}/summary.json",
        curves=f"{SWEEP}/{{point}}/gan/{{run}}/loss_curve.png",
        class_grid=f"{SWEEP}/{{point}}/gan/{{run}}/class_grid.png",
        samples=directory(f"{SWEEP}/{{point}}/gan/{{run}}/samples"),
    params:
        cfg=sweep_cfg(rules.train_gan.params.cfg),
        # resumable state beside the run's folder (the main rule's is results/gan/RUN.state)
        state_dir=lambda wildcards, output: f"{os.path.dirname(output.checkpoint)}.state",
    log:
        "results/logs/sweep/{point}/train_gan/{run}.log",
    benchmark:
        "results/benchmarks/sweep/{point}/train_gan/{run}.tsv"


use rule generate as sweep_generate with:
    input:
        checkpoint=rules.sweep_train_gan.output.checkpoint,
    output:
        directory(f"{SWEEP}/{{point}}/synthetic/{{run}}"),
    params:
        cfg=sweep_cfg(rules.generate.params.cfg),
    log:
        "results/logs/sweep/{point}/generate/{run}.log",
    benchmark:
        "results/benchmarks/sweep/{point}/generate/{run}.tsv"


use rule train_classifier as sweep_train_classifier with:
    input:
        array=lambda wildcards: sweep_data(wildcards, "crops.npy"),
        index=lambda wildcards: sweep_data(wildcards, "index.parquet"),
        synthetic=sweep_synthetic,
    output:
        predictions=f"{SWEEP}/{{point}}/classifiers/{{method}}/predictions.parquet",
        metrics=f"{SWEEP}/{{point}}/classifiers/{{method}}/metrics.json",
        model=f"{SWEEP}/{{point}}/classifiers/{{method}}/model.pt",
        curve=f"{SWEEP}/{{point}}/classifiers/{{method}}/curve.json",
    params:
        cfg=sweep_cfg(rules.train_classifier.params.cfg),
        out_dir=lambda wildcards, output: os.path.dirname(output.metrics),
    log:
        "results/logs/sweep/{point}/classifiers/{method}.log",
    benchmark:
        "results/benchmarks/sweep/{point}/classifiers/{method}.tsv"


rule sweep_aggregate:
    input:
        metrics=sweep_metrics(),
    output:
        runs=f"{SWEEP}/runs.parquet",
        summary=f"{SWEEP}/summary.parquet",
        csv=report(
            f"{SWEEP}/summary.csv",
            caption="../report/sweep.rst",
            category="Sweep",
            labels={"table": "mean and spread across seeds (CSV)"},
        ),
    log:
        "results/logs/sweep/aggregate.log",
    benchmark:
        "results/benchmarks/sweep/aggregate.tsv"
    threads: 1
    conda:
        "../envs/fairgen.yaml"
    shell:
        "fairgen sweep-aggregate --metrics {input.metrics} --out-runs {output.runs}"
        " --out-summary {output.summary} --out-csv {output.csv} > {log} 2>&1"


rule sweep_report:
    input:
        runs=rules.sweep_aggregate.output.runs,
    output:
        html=report(
            f"{SWEEP}/report.html",
            caption="../report/sweep.rst",
            category="Sweep",
            labels={"table": "sweep report (HTML)"},
        ),
    log:
        "results/logs/sweep/report.log",
    benchmark:
        "results/benchmarks/sweep/report.tsv"
    threads: 1
    conda:
        "../envs/fairgen.yaml"
    shell:
        "fairgen sweep-report --runs {input.runs} --out-html {output.html} > {log} 2>&1"
