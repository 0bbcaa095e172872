"""The ``fairgen`` command line: one subcommand per Snakemake rule.

Every subcommand takes the configuration as ``--config FILE`` (YAML), ``--config-json TEXT``
(what the Snakemake rules pass) and/or ``--set key.sub=value`` overrides; the result is
validated against the project's one JSON schema before anything runs.
Targets are imported lazily so ``fairgen --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from fairgen import __version__
from fairgen.common.errors import FairgenError
from fairgen.common.registry import (
    gan_run_names,
    method_names,
    zoo_dataset_names,
    zoo_run_names,
)

# name -> (target "module:function", help, [(flags, kwargs), ...])
COMMANDS: dict[str, tuple[str, str, list]] = {}


def command(name: str, target: str, help: str, *arguments):
    COMMANDS[name] = (target, help, list(arguments))


def arg(*flags, **kwargs):
    return flags, kwargs


# arguments several commands share
REAL_ARRAY = arg("--array", required=True, help="real crops .npy (N,H,W,3) uint8")
REAL_INDEX = arg("--index", required=True, help="real crops Parquet index (splits, attributes)")
GAN_RUN = arg("--run", required=True, choices=gan_run_names(), help="GAN run name")
OUT_DIR = arg("--out-dir", required=True, help="output folder")
OUT_HTML = arg("--out-html", required=True, help="HTML report to write")
GAN_CHECKPOINT = arg("--checkpoint", required=True, help="checkpoint.pt written by 'fairgen train-gan'")
ZOO_DATA = arg("--data", required=True, help="dataset folder written by 'fairgen zoo-data'")


command(
    "dataset", "fairgen.stages.dataset:prepare",
    "Get the face dataset (synthesize the embedded default, download CelebA, or verify a local copy) "
    "and write a manifest naming its root.",
    arg("--out", required=True, help="manifest JSON to write"),
)
command(
    "crops", "fairgen.stages.crops:run",
    "Make landmark-based face crops into one packed uint8 array plus a Parquet index.",
    arg("--dataset", required=True, help="manifest JSON written by 'fairgen dataset'"),
    arg("--array", required=True, help="output .npy (N,H,W,3) uint8"),
    arg("--index", required=True, help="output Parquet index"),
    arg("--summary", required=True, help="output JSON summary (counts, skipped images, timing)"),
    arg("--png-dir", default=None, help="folder for PNG previews (crops.export_png of them)"),
)
command(
    "train-gan", "fairgen.stages.train_gan:train",
    "Train one Fairness GAN run (fgan_dp: demographic-parity term, fgan_eqopp: equal-opportunity "
    "term, acgan: no fairness term) on the real train crops with the shared GAN trainer. Writes "
    "checkpoint.pt, log.jsonl, samples/, loss_curve.png, class_grid.png (samples by c and generated "
    "y) and summary.json into --out-dir when training is done. An interrupted run resumes from its "
    "state folder (--state-dir) when the same command runs again.",
    GAN_RUN,
    REAL_ARRAY,
    REAL_INDEX,
    OUT_DIR,
    arg("--state-dir", default=None,
        help="resumable training state while the run is unfinished (default: OUT_DIR.state beside "
             "--out-dir; removed when every output is written)"),
)
command(
    "generate", "fairgen.stages.generate:generate",
    "Sample a synthetic dataset (PNG images + samples.parquet + packed .npy + preview sheets per "
    "(c, y)) from a GAN checkpoint, with c split exactly by generate.protected_ratio.",
    GAN_RUN,
    GAN_CHECKPOINT,
    arg("--out-dir", required=True, help="output dataset folder (replaced atomically)"),
)
command(
    "train-classifier", "fairgen.stages.train_classifier:train_classifier",
    "Train the downstream outcome classifier of one method (real, reweighing, a GAN run's synthetic "
    "set, or real plus synthetic), pick the epoch by real-valid accuracy and audit it on the real "
    "test split. Writes predictions.parquet, metrics.json, model.pt and curve.json into --out-dir.",
    arg("--method", required=True,
        choices=method_names()),
    REAL_ARRAY,
    REAL_INDEX,
    arg("--synthetic", action="append", default=[], metavar="DIR",
        help="synthetic dataset folder (repeatable; for the GAN methods and real_plus_synthetic)"),
    arg("--pairs", default=None, metavar="DIR",
        help="counterfactual pair set ('fairgen generate-pairs'; for real_plus_pairs, real_clp, real_clp_dann)"),
    arg("--label-model", default=None,
        help="model.pt of the real classifier (real_plus_pairs with classifier.pair_label real_classifier)"),
    OUT_DIR,
)
command(
    "generate-pairs", "fairgen.stages.generate_pairs:generate_pairs",
    "Sample counterfactual pairs from a GAN checkpoint: pairs.n_pairs noise draws z, each written "
    "as G(z, c=0) and G(z, c=1) sharing a pair_id (synthetic dataset format plus pair_id).",
    GAN_RUN,
    GAN_CHECKPOINT,
    arg("--out-dir", required=True, help="output pair set folder (replaced atomically)"),
)
command(
    "threshold-baseline", "fairgen.stages.threshold_baseline:threshold_curve",
    "The post-processing baseline: group-specific thresholds on the real classifier's scores, chosen on "
    "the real valid split for each demographic-parity bound, applied to the real test split (an "
    "accuracy-vs-DP curve with paired intervals against the real classifier).",
    REAL_ARRAY,
    REAL_INDEX,
    arg("--model", required=True, help="model.pt of 'fairgen train-classifier --method real'"),
    arg("--out-json", required=True, help="curve JSON to write"),
)
command(
    "pair-diagnostics", "fairgen.stages.pair_diagnostics:diagnose",
    "What limits the counterfactual-pair methods: flip success and identity kept of a pair set, and per "
    "classifier its c-sensitivity on pairs and on real images and how well its features tell real from "
    "generated images.",
    REAL_ARRAY,
    REAL_INDEX,
    arg("--pairs", required=True, metavar="DIR", help="pair set folder ('fairgen generate-pairs')"),
    arg("--classifier", action="append", default=[], help="model.pt of a classifier (repeatable)"),
    arg("--out-json", required=True, help="diagnostics JSON to write"),
    arg("--cache-dir", default=None, help="cache of the c and attribute readers (default: beside --out-json)"),
)
command(
    "tradeoff", "fairgen.stages.tradeoff:run",
    "Set debiasing points (test predictions) against both baselines on the same test split: accuracy and "
    "DP difference with paired intervals against real and against reweighing, the threshold curve's "
    "accuracy at each point's DP difference, which points dominate both baselines, and a figure.",
    arg("--real", required=True, help="predictions.parquet of the real classifier"),
    arg("--reweighing", required=True, help="predictions.parquet of the reweighing classifier"),
    arg("--point", action="append", default=[], metavar="NAME=FILE",
        help="a point's predictions.parquet (repeatable; NAME FAMILY@VALUE puts it on FAMILY's curve)"),
    arg("--thresholds", required=True, help="curve.json of 'fairgen threshold-baseline'"),
    arg("--frontier", default=None, help="frontier JSON of 'fairgen frontier' (embedded data only)"),
    arg("--out-json", required=True, help="JSON to write"),
    arg("--out-png", required=True, help="figure to write"),
)
command(
    "relabel", "fairgen.stages.relabel:relabel_synthetic",
    "Diagnostic: copy a synthetic set with its labels replaced by a trained classifier's reading of "
    "each image (--parity: shifted per group to equal positive rates). A classifier trained on the "
    "copy shows what the images allow when the labels are not the limit.",
    arg("--synthetic", required=True, metavar="DIR", help="synthetic dataset folder ('fairgen generate')"),
    arg("--classifier", required=True, help="model.pt of 'fairgen train-classifier' (normally --method real)"),
    arg("--out-dir", required=True, help="output synthetic dataset folder"),
    arg("--parity", action="store_true", help="equal positive rates in both groups"),
)
command(
    "metrics-table", "fairgen.stages.metrics_table:write_metrics_table",
    "Combine the metrics.json of several classifiers into one table (Parquet and CSV).",
    arg("--metrics", required=True, nargs="+", help="metrics.json files, one per method"),
    arg("--out-parquet", required=True, help="output Parquet (kind metrics_table)"),
    arg("--out-csv", required=True, help="output CSV"),
)
command(
    "compare", "fairgen.stages.compare:write_comparison",
    "Set every classifier beside the 'real' baseline on the same test images: the change in "
    "accuracy and in each fairness metric (method - real, and relative to real) with paired "
    "bootstrap intervals, as Parquet (kind comparison) and CSV.",
    arg("--predictions", required=True, nargs="+", help="predictions.parquet files, one per method, real among them"),
    arg("--out-parquet", required=True, help="output Parquet (kind comparison)"),
    arg("--out-csv", required=True, help="output CSV"),
)
command(
    "quality", "fairgen.stages.quality:run",
    "Quality of synthetic sets against the real crops: FID overall and per protected group "
    "(own-CNN features, plus Inception v3 with quality.inception_weights), P(y=1|c) real vs "
    "synthetic, and c-conditioning accuracy. Writes OUT/quality.json and OUT/summary.tsv.",
    REAL_ARRAY,
    arg("--index", required=True, help="real crops Parquet index"),
    arg("--synthetic", action="append", default=[], metavar="RUN=FOLDER",
        help="a synthetic dataset folder, named RUN (repeatable; FOLDER alone uses its name)"),
    arg("--out", required=True, help="output folder (quality.json, summary.tsv, cache/ of extractor weights)"),
)
command(
    "audit", "fairgen.report.audit:audit",
    "Fairness audit report: one self-contained HTML file (inline CSS, images as data URIs, no "
    "network references) with the dataset card, GAN training, classifier comparison with "
    "confidence intervals, trade-off plot, synthetic-data quality, the paper's reference numbers "
    "and a generated summary; the figures are also written as PNG files. Optional inputs that are "
    "absent are reported as absent in their section.",
    arg("--dataset", required=True, help="dataset manifest JSON ('fairgen dataset')"),
    arg("--classifiers-dir", required=True,
        help="folder with METHOD/metrics.json for every classifier.methods entry (required)"),
    arg("--crops-index", default=None, help="crops Parquet index (real base rates per split)"),
    arg("--crops-summary", default=None, help="crops summary JSON"),
    arg("--gan-dir", default=None, help="folder with one folder per GAN run (RUN/log.jsonl, sample grids)"),
    arg("--synthetic-dir", default=None, help="folder with one synthetic set per GAN run (RUN/samples.parquet)"),
    arg("--quality", default=None, help="quality.json written by 'fairgen quality'"),
    arg("--comparison", default=None, help="comparison.parquet written by 'fairgen compare' (paired changes)"),
    arg("--thresholds", default=None, help="curve.json of 'fairgen threshold-baseline' (drawn on the trade-off plot)"),
    arg("--pair-diagnostics", default=None, help="diagnostics.json of 'fairgen pair-diagnostics'"),
    arg("--frontier", default=None,
        help="frontier JSON of 'fairgen frontier' (embedded synthetic data only): the oracle frontier section"),
    arg("--benchmark", action="append", default=[], metavar="TSV", dest="benchmarks",
        help="Snakemake benchmark file of an upstream job (repeatable): the report's run-cost table"),
    OUT_HTML,
    arg("--figures-dir", required=True, help="folder to write the report's figures into (PNG)"),
)
command(
    "audit-predictions", "fairgen.report.audit_predictions:run",
    "Fairness audit of any model's predictions (CSV or Parquet): per-group metrics (n, base rate, selection "
    "rate, TPR, FPR, FNR, precision, error rate, accuracy, balanced accuracy; AUC and average precision with "
    "scores) for any number of groups and their intersections, differences and ratios between groups, "
    "disparities against a reference group with pass/fail at a tolerance, all with stratified bootstrap "
    "intervals. Writes metrics.parquet/.csv, audit.json, report.html (self-contained) and figures/ into "
    "--out-dir. Unset options come from the config section audit_predictions; its defaults read an "
    "Aequitas-shaped file (score, label_value, attribute columns) as it is.",
    arg("--predictions", required=True, help="predictions file (.csv or .parquet)"),
    arg("--out-dir", required=True, help="output folder (written completely or not at all)"),
    arg("--label", default=None, help="column of the 0/1 labels (default label_value)"),
    arg("--score", default=None, help="column of the scores (default score); predicted 1 when score >= threshold"),
    arg("--threshold", type=float, default=None,
        help="decision threshold on the score (default 0.5; without it scores must lie in [0, 1])"),
    arg("--prediction", default=None, help="column of 0/1 predictions, instead of --score"),
    arg("--group", action="append", default=None, metavar="COL",
        help="group column (repeatable; default: every other column)"),
    arg("--intersect", action="store_true", default=None, help="also audit the intersection of the group columns"),
    arg("--model", default=None, metavar="COL", help="column naming the model of each row (several models)"),
    arg("--compare", nargs=2, default=None, metavar=("A", "B"),
        help="paired intervals of B - A on the same rows (needs --model)"),
    arg("--reference", action="append", default=None, metavar="COL=VALUE",
        help="reference group of a column (repeatable; VALUE alone with one group column; default the largest)"),
    arg("--tolerance", type=float, default=None, help="pass/fail tolerance tau (default 0.8)"),
    arg("--min-group-size", type=int, default=None, help="flag groups under this many rows (default 30)"),
    arg("--n-boot", type=int, default=None, help="bootstrap resamples (default 1000; 0 = no intervals)"),
    arg("--level", type=float, default=None, help="confidence level (default 0.95)"),
    arg("--seed", type=int, default=None, help="bootstrap seed (default 0)"),
)
command(
    "example-predictions", "fairgen.report.audit_predictions:example_predictions",
    "Write a seeded SYNTHETIC predictions file in Aequitas's shape (score, label_value, race, sex; with "
    "--models N also a model column, N models on the same rows) to try 'fairgen audit-predictions' on.",
    arg("--out", required=True, help="file to write (.csv or .parquet)"),
    arg("--rows", type=int, default=20_000, help="rows per model (default 20000)"),
    arg("--seed", type=int, default=0, help="seed (default 0)"),
    arg("--models", type=int, default=1, help="number of models (default 1: no model column)"),
)
command(
    "zoo-data", "fairgen.stages.zoo.data:prepare",
    "Prepare one seed-GAN zoo dataset as uint8 images.npy (N,H,W,C) + labels.npy + info.json: "
    "digits (scikit-learn's bundled real 8x8 digits, upsampled to 28x28), mnist / cifar10 "
    "(torchvision; downloaded into zoo.data_root or read from zoo.mnist_root / zoo.cifar10_root), "
    "or cifar_standin (a procedural CIFAR-10 stand-in, not CIFAR).",
    arg("--dataset", required=True, choices=zoo_dataset_names()),
    OUT_DIR,
    arg("--size", type=int, default=None, help="image size (default: the dataset's own, 28 or 32)"),
    arg("--channels", type=int, choices=[1, 3], default=None, help="channels (default: the dataset's own)"),
)
command(
    "zoo-classifier", "fairgen.stages.zoo.classifier:train_classifier",
    "Train (seeded) the small CNN that evaluates the zoo runs of one dataset on its REAL images; "
    "writes model.pt and metrics.json (held-out accuracy); reuses an up-to-date model.pt.",
    ZOO_DATA,
    OUT_DIR,
)
command(
    "zoo-train", "fairgen.stages.zoo.train:train",
    "Train one seed-GAN zoo run with the shared GAN trainer: checkpoint.pt, log.jsonl, sample "
    "grids, loss_curve.png and train.json in --out-dir (resumes from a matching checkpoint).",
    arg("--model", required=True, choices=zoo_run_names(),
        help="zoo run (its settings are in the config section zoo.<run>)"),
    ZOO_DATA,
    OUT_DIR,
)
command(
    "zoo-evaluate", "fairgen.stages.zoo.evaluate:evaluate",
    "Evaluate one zoo run: FID in the real-data classifier's feature space (with the real-vs-real "
    "floor), accuracy of the classifier on samples by requested class (conditional models), class "
    "coverage, and a per-class sample grid (a row per class). Writes metrics.json and grid.png.",
    arg("--model", required=True, choices=zoo_run_names()),
    arg("--checkpoint", required=True, help="checkpoint.pt written by 'fairgen zoo-train'"),
    arg("--data", required=True, help="the run's dataset folder ('fairgen zoo-data')"),
    arg("--classifier", required=True, help="model.pt written by 'fairgen zoo-classifier' for that dataset"),
    OUT_DIR,
)
command(
    "zoo-report", "fairgen.report.zoo:report",
    "The seed-GAN zoo report: one self-contained HTML file (inline CSS, images as data URIs) with "
    "per-class sample grids, training curves, FID, conditional accuracy and class coverage per run.",
    arg("--zoo-dir", required=True, help="folder holding RUN/train, RUN/eval and classifier/DATASET"),
    OUT_HTML,
    arg("--out-json", default=None, help="also write every number as JSON"),
)
command(
    "sweep-aggregate", "fairgen.stages.sweep_aggregate:aggregate",
    "Collect the classifier metrics of a sweep (.../PROTECTED-OUTCOME/sSEED[/lLAMBDA]/classifiers/METHOD/"
    "metrics.json; the point is read from the path and checked against the file) into one row per run "
    "(runs.parquet) and their mean, sample standard deviation, min and max across seeds per (protected, "
    "outcome, lambda_fair, method, metric) (summary Parquet + CSV).",
    arg("--metrics", required=True, nargs="+", help="metrics.json files of the sweep runs"),
    arg("--out-runs", required=True, help="output Parquet, one row per run (kind sweep_runs)"),
    arg("--out-summary", required=True, help="output Parquet, statistics across seeds (kind sweep_summary)"),
    arg("--out-csv", required=True, help="the same statistics as CSV"),
)
command(
    "frontier", "fairgen.stages.frontier:run",
    "The oracle accuracy-fairness frontier of the embedded synthetic data: the highest expected accuracy "
    "any classifier can reach on a split under each demographic-parity bound, from each image's true "
    "P(outcome = 1) (recomputed from the dataset's recorded parameters and checked against the crops index).",
    arg("--dataset", required=True, help="manifest JSON written by 'fairgen dataset' (source 'synthetic')"),
    arg("--index", required=True, help="crops Parquet index (splits, attributes)"),
    arg("--out-json", required=True, help="frontier JSON to write"),
    arg("--split", default="test", choices=["train", "valid", "test"], help="split to evaluate (default test)"),
    arg("--bound", type=float, action="append", default=None, metavar="B",
        help="also solve and print the point at DP difference <= B (repeatable)"),
)
command(
    "sweep-report", "fairgen.report.sweep:report",
    "The sweep report: one self-contained HTML page with the key metrics as mean +/- std across seeds "
    "per (pair, lambda_fair, method) and each metric against lambda_fair with every seed as a dot.",
    arg("--runs", required=True, help="runs.parquet written by 'fairgen sweep-aggregate'"),
    OUT_HTML,
)


command(
    "config-readme", "fairgen.common.config:write_readme",
    "Write the configuration reference (config/README.md: every schema key with its type, default "
    "and description) generated from the schema.",
    arg("--out", default=None, help="file to write (default: standard output)"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fairgen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"fairgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (target, help_text, arguments) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text.split(". ")[0], description=help_text)
        p.add_argument("--config", default=None, help="YAML config file (validated against the schema)")
        p.add_argument("--config-json", default=None, help="config as JSON text (merged over --config)")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override one config key, e.g. --set gan.steps=100 (repeatable)")
        p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        for flags, kwargs in arguments:
            p.add_argument(*flags, **kwargs)
        p.set_defaults(_target=target)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from fairgen.common import config as config_mod

    kwargs = {k: v for k, v in vars(args).items()
              if k not in ("command", "config", "config_json", "overrides", "verbose", "_target")}
    try:
        cfg = config_mod.stage_config(config_mod.load(args.config, args.overrides, args.config_json),
                                      args.command, **kwargs)
        if "device" in config_mod.STAGE_CONFIG[args.command].keys:  # a torch stage
            from fairgen.common import runtime

            cfg = runtime.configure(cfg)
        module, func = args._target.split(":")
        result = getattr(importlib.import_module(module), func)(cfg, **kwargs)
    except FairgenError as e:
        print(f"fairgen {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fairgen {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result) if isinstance(result, int) else 0
