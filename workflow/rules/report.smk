# The fairness audit: one self-contained HTML report (results/audit/report.html) plus its figures
# as PNG files, from the outputs of every other stage. Both are also in Snakemake's own report
# (`snakemake --report report.html`), category "Audit".
AUDIT = "results/audit"


rule audit:
    input:
        manifest=rules.dataset.output.manifest,
        index=rules.crops.output.index,
        crops_summary=rules.crops.output.summary,
        metrics=expand(rules.train_classifier.output.metrics, method=config["classifier"]["methods"]),
        # read for the pass/fail table (the same audit as `fairgen audit-predictions`)
        predictions=expand(rules.train_classifier.output.predictions, method=config["classifier"]["methods"]),
        gan_logs=expand(rules.train_gan.output.log_jsonl, run=config["gan"]["runs"]),
        gan_summaries=expand(rules.train_gan.output.summary, run=config["gan"]["runs"]),
        gan_grids=expand(rules.train_gan.output.class_grid, run=config["gan"]["runs"]),
        gan_samples=expand(rules.train_gan.output.samples, run=config["gan"]["runs"]),
        synthetic=expand(rules.generate.output[0], run=config["gan"]["runs"]),
        quality=rules.quality.output.json,
        comparison=lambda wildcards: rules.compare_classifiers.output.parquet if has_comparison() else [],
        thresholds=lambda wildcards: (
            rules.threshold_baseline.output[0] if "real" in config["classifier"]["methods"] else []
        ),
        pair_diagnostics=lambda wildcards: rules.pair_diagnostics.output.json if uses_pairs() else [],
        frontier=lambda wildcards: rules.frontier.output.json if has_frontier() else [],
        benchmarks=audit_benchmarks,
    output:
        html=report(
            f"{AUDIT}/report.html",
            caption="../report/audit.rst",
            category="Audit",
            labels={"what": "self-contained audit report"},
        ),
        figures=report(
            directory(f"{AUDIT}/figures"),
            patterns=["{name}.png"],
            caption="../report/audit_figures.rst",
            category="Audit",
            subcategory="Figures",
            labels={"figure": "{name}"},
        ),
    params:
        cfg=lambda wildcards: cfg_json("audit"),
        # the folders holding METHOD/metrics.json, RUN/log.jsonl and the RUN synthetic sets
        classifiers_dir=lambda wildcards, input: os.path.dirname(os.path.dirname(input.metrics[0])),
        # (no GAN runs configured: an empty folder name; the audit then looks for none)
        gan_dir=lambda wildcards, input: os.path.dirname(os.path.dirname(input.gan_logs[0])) if input.gan_logs else "",
        synthetic_dir=lambda wildcards, input: os.path.dirname(input.synthetic[0]) if input.synthetic else "",
        comparison=lambda wildcards, input: f"--comparison {shlex.quote(input.comparison)}" if input.comparison else "",
        pairs=lambda wildcards, input: (f" --thresholds {shlex.quote(input.thresholds)}" if input.thresholds else "")
        + (f" --pair-diagnostics {shlex.quote(input.pair_diagnostics)}" if input.pair_diagnostics else "")
        + (f" --frontier {shlex.quote(input.frontier)}" if input.frontier else ""),
        benchmarks=lambda wildcards, input: " ".join(f"--benchmark {shlex.quote(f)}" for f in input.benchmarks),
    log:
        "results/logs/audit.log",
    benchmark:
        "results/benchmarks/audit.tsv"
    conda:
        "../envs/fairgen.yaml"
    shell:
        "fairgen audit --config-json {params.cfg:q} --dataset {input.manifest}"
        " --classifiers-dir {params.classifiers_dir:q} --crops-index {input.index}"
        " --crops-summary {input.crops_summary} --gan-dir {params.gan_dir:q}"
        " --synthetic-dir {params.synthetic_dir:q} --quality {input.quality} {params.comparison}{params.pairs}"
        " {params.benchmarks}"
        " --out-html {output.html} --figures-dir {output.figures} > {log} 2>&1"
