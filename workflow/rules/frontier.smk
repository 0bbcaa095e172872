# The oracle accuracy-vs-DP frontier of the real test split (fairgen.eval.frontier): only the embedded
# synthetic data (dataset.source synthetic) knows each image's true P(outcome = 1), so only then does
# the audit ask for it (report.smk) and does this rule run.
FRONTIER = "results/frontier/frontier.json"
# (has_frontier and frontier_manifest are in common.smk)


rule frontier:
    input:
        manifest=frontier_manifest,
        index=rules.crops.output.index,
    output:
        json=FRONTIER,
    params:
        cfg=lambda wildcards: cfg_json("frontier"),
    log:
        "results/logs/frontier.log",
    benchmark:
        "results/benchmarks/frontier.tsv"
    threads: 1
    conda:
        "../envs/fairgen.yaml"
    shell:
        "fairgen frontier --config-json {params.cfg:q} --dataset {input.manifest} --index {input.index}"
        " --out-json {output.json} > {log} 2>&1"
