"""One module per CLI subcommand (= one Snakemake rule)."""
