"""Datasets and formats: CelebA files and layouts, the embedded procedural CelebA, sources and splits,
face crops (and the one crops loader), synthetic sets, counterfactual pair sets, the zoo's datasets."""
