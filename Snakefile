# fairgen: biased face dataset -> Fairness GAN -> debiased synthetic data -> fairness audit.
# The rules are thin: each calls one `fairgen` CLI subcommand; all logic lives in the package.
import sys

from snakemake.utils import min_version, validate

sys.path.insert(0, workflow.basedir)  # fairgen.common.config of this tree: the stages' config declaration

from fairgen.common.config import validate as fairgen_validate

min_version("8.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")
# the same schema with the registry's run and method names as enums (fairgen.common.registry; the YAML marks
# those keys x-registry): raises ConfigError naming the key
fairgen_validate(config)


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/gan.smk"
include: "workflow/rules/downstream.smk"
include: "workflow/rules/pairs.smk"
include: "workflow/rules/zoo.smk"
include: "workflow/rules/quality.smk"
include: "workflow/rules/frontier.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/sweep.smk"
include: "workflow/rules/audit_predictions.smk"


rule all:
    input:
        final_targets(),
    default_target: True
