# The seed-GAN zoo (`snakemake zoo`): vanilla GAN, DCGAN and conditional GAN on MNIST-style digits,
# AC-GAN on CIFAR-10-style images (and on the digits), each trained with the project's one GAN
# trainer, sampled per class and scored against a classifier trained on the real data of its
# dataset. Not part of `all` unless zoo.in_all is true (it is independent of the fairness audit and
# adds ~20 CPU minutes). Torch jobs use config key `threads` (default 1): these small models run
# best one job per core, and extra threads on a busy machine make them several times slower.
# Layout: results/zoo/{data,classifier}/{dataset}, results/zoo/{model}/{train,eval}, results/zoo/report.html.
ZOO_RUNS = registry.zoo_run_names()  # fairgen.common.registry
ZOO_DATASETS = registry.zoo_dataset_names()
# (zoo_run_data, zoo_targets and ZOO are in common.smk; each rule's config is cfg_json's, so the
# evaluation classifier gets only the zoo.eval keys it reads and changing n_samples does not retrain it)


rule zoo:
    input:
        zoo_targets(),


rule zoo_data:
    output:
        images=f"{ZOO}/data/{{dataset}}/images.npy",
        labels=f"{ZOO}/data/{{dataset}}/labels.npy",
        info=f"{ZOO}/data/{{dataset}}/info.json",
    wildcard_constraints:
        dataset="|".join(ZOO_DATASETS),
    params:
        cfg=lambda wildcards: cfg_json("zoo-data"),
        out_dir=lambda wildcards, output: os.path.dirname(output.info),
    log:
        "results/logs/zoo/data_{dataset}.log",
    benchmark:
        "results/benchmarks/zoo/data_{dataset}.tsv"
    threads: 1
    conda:
        "../envs/fairgen.yaml"
    shell:
        "fairgen zoo-data --config-json {params.cfg:q} --dataset {wildcards.dataset}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule zoo_classifier:
    input:
        info=f"{ZOO}/data/{{dataset}}/info.json",
    output:
        model=f"{ZOO}/classifier/{{dataset}}/model.pt",
        metrics=f"{ZOO}/classifier/{{dataset}}/metrics.json",
    wildcard_constraints:
        dataset="|".join(ZOO_DATASETS),
    params:
        cfg=lambda wildcards: cfg_json("zoo-classifier"),
        data=lambda wildcards, input: os.path.dirname(input.info),
        out_dir=lambda wildcards, output: os.path.dirname(output.model),
    log:
        "results/logs/zoo/classifier_{dataset}.log",
    benchmark:
        "results/benchmarks/zoo/classifier_{dataset}.tsv"
    threads: config["threads"]
    resources:
        gpu=1,
    conda:
        "../envs/fairgen.yaml"
    shell:
        "OMP_NUM_THREADS={threads} fairgen zoo-classifier --config-json {params.cfg:q} --data {params.data}"
        " --out-dir {params.out_dir} > {log} 2>&1"


# The resumable training state of an unfinished zoo_train job is kept in {ZOO}/{model}/train.state/
# (not declared: Snakemake deletes a job's outputs before running it again); a rerun after an
# interruption (`--rerun-incomplete`) resumes from it, and it is removed once train.json is written.
rule zoo_train:
    input:
        info=lambda wildcards: f"{zoo_run_data(wildcards)}/info.json",
    output:
        checkpoint=f"{ZOO}/{{model}}/train/checkpoint.pt",
        log_jsonl=f"{ZOO}/{{model}}/train/log.jsonl",
        summary=f"{ZOO}/{{model}}/train/train.json",
        loss_curve=f"{ZOO}/{{model}}/train/loss_curve.png",
        samples=directory(f"{ZOO}/{{model}}/train/samples"),
    wildcard_constraints:
        model="|".join(ZOO_RUNS),
    params:
        cfg=lambda wildcards: cfg_json("zoo-train", model=wildcards.model),
        data=lambda wildcards, input: os.path.dirname(input.info),
        out_dir=lambda wildcards, output: os.path.dirname(output.checkpoint),
    log:
        "results/logs/zoo/train_{model}.log",
    benchmark:
        "results/benchmarks/zoo/train_{model}.tsv"
    threads: config["threads"]
    resources:
        gpu=1,
    conda:
        "../envs/fairgen.yaml"
    shell:
        "OMP_NUM_THREADS={threads} fairgen zoo-train --config-json {params.cfg:q} --model {wildcards.model} --data {params.data}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule zoo_evaluate:
    input:
        checkpoint=rules.zoo_train.output.checkpoint,
        info=lambda wildcards: f"{zoo_run_data(wildcards)}/info.json",
        classifier=lambda wildcards: f"{ZOO}/classifier/{config['zoo'][wildcards.model]['dataset']}/model.pt",
    output:
        metrics=f"{ZOO}/{{model}}/eval/metrics.json",
        grid=report(
            f"{ZOO}/{{model}}/eval/grid.png",
            caption="../report/zoo_grid.rst",
            category="Zoo",
            subcategory="Samples",
            labels={"run": "{model}"},
        ),
    wildcard_constraints:
        model="|".join(ZOO_RUNS),
    params:
        cfg=lambda wildcards: cfg_json("zoo-evaluate", model=wildcards.model),
        data=lambda wildcards, input: os.path.dirname(input.info),
        out_dir=lambda wildcards, output: os.path.dirname(output.metrics),
    log:
        "results/logs/zoo/evaluate_{model}.log",
    benchmark:
        "results/benchmarks/zoo/evaluate_{model}.tsv"
    threads: config["threads"]
    resources:
        gpu=1,
    conda:
        "../envs/fairgen.yaml"
    shell:
        "OMP_NUM_THREADS={threads} fairgen zoo-evaluate --config-json {params.cfg:q} --model {wildcards.model}"
        " --checkpoint {input.checkpoint} --data {params.data} --classifier {input.classifier}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule zoo_report:
    input:
        metrics=expand(f"{ZOO}/{{model}}/eval/metrics.json", model=config["zoo"]["runs"]),
        grids=expand(f"{ZOO}/{{model}}/eval/grid.png", model=config["zoo"]["runs"]),
        train=expand(f"{ZOO}/{{model}}/train/train.json", model=config["zoo"]["runs"]),
        curves=expand(f"{ZOO}/{{model}}/train/loss_curve.png", model=config["zoo"]["runs"]),
        classifiers=lambda wildcards: sorted(
            {f"{ZOO}/classifier/{config['zoo'][run]['dataset']}/metrics.json" for run in config["zoo"]["runs"]}
        ),
    output:
        html=report(
            f"{ZOO}/report.html", caption="../report/zoo.rst", category="Zoo", labels={"what": "seed-GAN zoo report"}
        ),
        summary=f"{ZOO}/summary.json",
    params:
        cfg=lambda wildcards: cfg_json("zoo-report"),
        # results/zoo: the folder above RUN/eval/metrics.json
        zoo_dir=lambda wildcards, input: os.path.dirname(os.path.dirname(os.path.dirname(input.metrics[0]))),
    log:
        "results/logs/zoo/report.log",
    benchmark:
        "results/benchmarks/zoo/report.tsv"
    threads: 1
    conda:
        "../envs/fairgen.yaml"
    shell:
        "fairgen zoo-report --config-json {params.cfg:q} --zoo-dir {params.zoo_dir}"
        " --out-html {output.html} --out-json {output.summary} > {log} 2>&1"
