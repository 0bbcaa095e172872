"""fairgen: debias a face dataset with the Fairness GAN and audit the result."""

__version__ = "0.1.0"
