"""GAN training: one :class:`Trainer` for every model, in-memory batch sources, checkpoints, logs,
and sampling from a trained generator (:mod:`fairgen.training.sampling`)."""

from fairgen.training.batches import ArrayBatches, BatchSource, to_float_images, to_uint8_images
from fairgen.training.checkpoint import gan_from_checkpoint, load_checkpoint, load_gan
from fairgen.training.trainer import TrainConfig, Trainer, seed_everything

__all__ = [
    "ArrayBatches", "BatchSource", "TrainConfig", "Trainer", "gan_from_checkpoint", "load_checkpoint", "load_gan",
    "seed_everything", "to_float_images", "to_uint8_images",
]
