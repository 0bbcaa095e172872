"""Face datasets: CelebA files and parser, the embedded synthetic CelebA, and dataset sources."""
