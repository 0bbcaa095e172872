# GAN training: one Fairness GAN per configured run (gan.runs: fgan_dp, fgan_eqopp, acgan = the
# same model without the fairness term) on the real train crops, with the shared trainer.
# Interruption: Snakemake deletes a job's declared outputs before it runs the job (again), so the
# resumable training state is kept out of them, in results/gan/{run}.state/ (checkpoint, log,
# sample grids; deliberately not declared). An interrupted job (killed, preempted, timed out)
# leaves its outputs incomplete; the next `snakemake --rerun-incomplete` (set in both profiles)
# runs it again and it resumes from the state, giving the weights of an uninterrupted run. The
# outputs appear only when training is done, each atomically; the state is removed once they are
# all written, and a state that does not fit the current config or crops is discarded.
GAN = "results/gan"


# Top-level config a GAN run depends on, besides its gan section.
rule train_gan:
    input:
        array=rules.crops.output.array,
        index=rules.crops.output.index,
    output:
        checkpoint=f"{GAN}/{{run}}/checkpoint.pt",
        log_jsonl=f"{GAN}/{{run}}/log.jsonl",
        summary=f"{GAN}/{{run}}/summary.json",
        curves=report(
            f"{GAN}/{{run}}/loss_curve.png",
            caption="../report/gan_curves.rst",
            category="GAN",
            subcategory="{run}",
            labels={"run": "{run}", "figure": "training curves"},
        ),
        class_grid=report(
            f"{GAN}/{{run}}/class_grid.png",
            caption="../report/gan_class_grid.rst",
            category="GAN",
            subcategory="{run}",
            labels={"run": "{run}", "figure": "samples by (c, y)"},
        ),
        samples=report(
            directory(f"{GAN}/{{run}}/samples"),
            patterns=["{name}.png"],
            caption="../report/gan_samples.rst",
            category="GAN",
            subcategory="{run}",
            labels={"run": "{run}", "figure": "{name}"},
        ),
    params:
        # the gan section without the list of runs (adding a run must not retrain the others)
        cfg=lambda wildcards: cfg_json("train-gan"),
        out_dir=lambda wildcards, output: os.path.dirname(output.checkpoint),
        state_dir=lambda wildcards: f"{GAN}/{wildcards.run}.state",
    log:
        "results/logs/train_gan/{run}.log",
    benchmark:
        "results/benchmarks/train_gan/{run}.tsv"
    wildcard_constraints:
        run="|".join(config["gan"]["runs"]) or "(?!)",  # (?!) never matches: no runs configured
    # torch's threads are config key `threads` (fixed: results must not depend on --cores); with
    # --cores N Snakemake runs N / threads torch jobs side by side. device: auto trains on the GPU
    # when there is one.
    threads: config["threads"]
    resources:
        gpu=1,
    conda:
        "../envs/fairgen.yaml"
    shell:
        "fairgen train-gan --config-json {params.cfg:q} --run {wildcards.run} --array {input.array}"
        " --index {input.index} --out-dir {params.out_dir} --state-dir {params.state_dir} > {log} 2>&1"
