# Quality of the synthetic sets: FID overall and per protected group (own-CNN features, plus
# Inception v3 when quality.inception_weights names a local file), P(y=1|c) real train vs
# synthetic, and c-conditioning accuracy. One job over all GAN runs: the feature extractor is
# trained once on the real train crops and cached in results/quality/cache/ (an undeclared
# folder, so Snakemake keeps it when a new synthetic set reruns this job).
import shlex

QUALITY = "results/quality"


rule quality:
    input:
        array=rules.crops.output.array,
        index=rules.crops.output.index,
        synthetic=expand(rules.generate.output[0], run=config["gan"]["runs"]),
        # a configured local Inception v3 weights file is an input: must exist, reruns on change
        inception_weights=lambda wildcards: [w for w in [config["quality"]["inception_weights"]] if w],
    output:
        json=report(
            f"{QUALITY}/quality.json",
            caption="../report/quality.rst",
            category="Synthetic data quality",
            labels={"table": "all measures (JSON)"},
        ),
        tsv=report(
            f"{QUALITY}/summary.tsv",
            caption="../report/quality.rst",
            category="Synthetic data quality",
            labels={"table": "summary (TSV)"},
        ),
    params:
        cfg=lambda wildcards: cfg_json("quality"),
        # --synthetic RUN=FOLDER for each run (input.synthetic is in config["gan"]["runs"] order)
        synthetic=lambda wildcards, input: " ".join(
            shlex.quote(f"--synthetic={run}={folder}") for run, folder in zip(config["gan"]["runs"], input.synthetic)
        ),
        out_dir=lambda wildcards, output: os.path.dirname(output.json),
    log:
        "results/logs/quality.log",
    benchmark:
        "results/benchmarks/quality.tsv"
    threads: config["threads"]
    resources:
        gpu=1,
    conda:
        "../envs/fairgen.yaml"
    shell:
        "fairgen quality --config-json {params.cfg:q} --array {input.array} --index {input.index}"
        " {params.synthetic} --out {params.out_dir} > {log} 2>&1"
