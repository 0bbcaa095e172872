rule dataset:
    output:
        manifest=f"{DATA}/dataset.json",
    params:
        cfg=lambda wildcards: cfg_json("dataset"),
    log:
        "results/logs/dataset.log",
    benchmark:
        "results/benchmarks/dataset.tsv"
    threads: workflow.cores
    conda:
        "../envs/fairgen.yaml"
    shell:
        "fairgen dataset --config-json {params.cfg:q} --set dataset.synthetic.workers={threads} --out {output.manifest} > {log} 2>&1"


rule crops:
    input:
        manifest=rules.dataset.output.manifest,
    output:
        array=f"{DATA}/crops.npy",
        index=f"{DATA}/index.parquet",
        summary=report(f"{DATA}/crops_summary.json", caption="../report/crops.rst", category="Data"),
        previews=directory(f"{DATA}/previews"),
    params:
        cfg=lambda wildcards: cfg_json("crops"),
    log:
        "results/logs/crops.log",
    benchmark:
        "results/benchmarks/crops.tsv"
    threads: workflow.cores
    conda:
        "../envs/fairgen.yaml"
    shell:
        "fairgen crops --config-json {params.cfg:q} --set crops.workers={threads} --dataset {input.manifest}"
        " --array {output.array} --index {output.index} --summary {output.summary}"
        " --png-dir {output.previews} > {log} 2>&1"
