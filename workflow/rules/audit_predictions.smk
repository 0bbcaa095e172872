# Standalone target, not part of `all`: the fairness audit of any model's predictions file.
#   snakemake audit_predictions --cores 1 --config predictions=preds.csv
# Options come from the config section audit_predictions (its defaults read an Aequitas-shaped
# file: score, label_value and every other column as a group column); outputs go to
# audit_predictions.out_dir (report.html, audit.json, metrics.parquet/.csv, figures/).
# The input function predictions_file is in common.smk.


rule audit_predictions:
    input:
        predictions=predictions_file,
    output:
        directory(config["audit_predictions"]["out_dir"]),
    params:
        cfg=lambda wildcards: cfg_json("audit-predictions"),
    log:
        "results/logs/audit_predictions.log",
    benchmark:
        "results/benchmarks/audit_predictions.tsv"
    conda:
        "../envs/fairgen.yaml"
    shell:
        "fairgen audit-predictions --config-json {params.cfg:q} --predictions {input.predictions:q}"
        " --out-dir {output:q} > {log} 2>&1"
