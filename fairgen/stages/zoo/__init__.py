"""The seed-GAN zoo: one stage module per zoo rule."""
