"""Building blocks shared by the GANs: spectral-norm layers, conditional batch norm, ResNet
up/down blocks (SNGAN / BigGAN style) and weight-init helpers.

All blocks take and return NCHW tensors and work in channels_last memory format and under
bf16 autocast. Conditioning for :class:`ConditionalBatchNorm2d` / :class:`GBlock` is either a
long class index (N,), a float one-hot / soft class vector (N, num_classes), or -- for a block
built with ``cond_dim`` -- any float vector (N, cond_dim).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


def sn_conv2d(in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, padding: int | None = None,
              bias: bool = True, sn: bool = True) -> nn.Module:
    """``nn.Conv2d`` (padding defaults to ``kernel_size // 2``), spectrally normalised if ``sn``.

    Spectral norm uses ``torch.nn.utils.parametrizations.spectral_norm`` (one power iteration
    per training-mode forward; its ``u``/``v`` vectors are buffers, so they are checkpointed).
    """
    conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride, kernel_size // 2 if padding is None else padding, bias=bias)
    return spectral_norm(conv) if sn else conv


def sn_linear(in_features: int, out_features: int, bias: bool = True, sn: bool = True) -> nn.Module:
    """``nn.Linear``, spectrally normalised if ``sn``."""
    lin = nn.Linear(in_features, out_features, bias=bias)
    return spectral_norm(lin) if sn else lin


def sn_embedding(num_embeddings: int, dim: int, sn: bool = True) -> nn.Module:
    """``nn.Embedding`` (e.g. the class projection of a projection discriminator), SN if ``sn``."""
    emb = nn.Embedding(num_embeddings, dim)
    return spectral_norm(emb) if sn else emb


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose per-channel gain and bias depend on a conditioning input.

    Exactly one of ``num_classes`` / ``cond_dim``:

    * ``num_classes=K``: gain and bias are learned class embeddings (gain initialised to 1, bias
      to 0, i.e. plain BN at init). ``cond`` is a long index (N,) or a float (N, K) one-hot /
      soft assignment (then gain/bias are the assignment-weighted embeddings).
    * ``cond_dim=d``: ``gain = 1 + W_g cond + b_g``, ``bias = W_b cond + b_b`` for a float
      ``cond`` of shape (N, d) (or (N,) when d = 1); W, b start at 0.
    """

    def __init__(self, num_features: int, num_classes: int | None = None, cond_dim: int | None = None,
                 eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        if (num_classes is None) == (cond_dim is None):
            raise ValueError("ConditionalBatchNorm2d needs exactly one of num_classes / cond_dim")
        self.num_features = num_features
        self.num_classes = num_classes
        self.cond_dim = cond_dim
        self.bn = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum, affine=False)
        if num_classes is not None:
            self.gain = nn.Embedding(num_classes, num_features)
            self.bias = nn.Embedding(num_classes, num_features)
            nn.init.ones_(self.gain.weight)
        else:
            self.gain = nn.Linear(cond_dim, num_features)
            self.bias = nn.Linear(cond_dim, num_features)
            nn.init.zeros_(self.gain.weight)
            nn.init.zeros_(self.gain.bias)
        nn.init.zeros_(self.bias.weight)
        if isinstance(self.bias, nn.Linear):
            nn.init.zeros_(self.bias.bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        out = self.bn(x)
        if self.num_classes is not None:
            if cond.is_floating_point():
                gain = cond.to(self.gain.weight.dtype) @ self.gain.weight
                bias = cond.to(self.bias.weight.dtype) @ self.bias.weight
            else:
                gain, bias = self.gain(cond), self.bias(cond)
        else:
            cond = cond.reshape(cond.shape[0], -1).to(self.gain.weight.dtype)
            gain, bias = 1.0 + self.gain(cond), self.bias(cond)
        return out * gain[:, :, None, None].to(out.dtype) + bias[:, :, None, None].to(out.dtype)

    def extra_repr(self) -> str:
        what = f"num_classes={self.num_classes}" if self.num_classes is not None else f"cond_dim={self.cond_dim}"
        return f"{self.num_features}, {what}"


class GBlock(nn.Module):
    """ResNet generator block: ``BN-ReLU-up-conv3x3-BN-ReLU-conv3x3`` plus a skip ``up[-conv1x1]``.

    BN is :class:`ConditionalBatchNorm2d` when ``num_classes`` or ``cond_dim`` is given (then
    ``forward(x, cond)``), plain affine BN otherwise (``forward(x)``). Upsampling is nearest x2.
    The skip has a learnable 1x1 conv when the channel count changes.
    """

    def __init__(self, in_ch: int, out_ch: int, *, num_classes: int | None = None, cond_dim: int | None = None,
                 upsample: bool = True, sn: bool = False):
        super().__init__()
        self.conditional = num_classes is not None or cond_dim is not None
        self.upsample = upsample

        def norm(ch):
            if self.conditional:
                return ConditionalBatchNorm2d(ch, num_classes=num_classes, cond_dim=cond_dim)
            return nn.BatchNorm2d(ch)

        self.bn1 = norm(in_ch)
        self.conv1 = sn_conv2d(in_ch, out_ch, 3, sn=sn)
        self.bn2 = norm(out_ch)
        self.conv2 = sn_conv2d(out_ch, out_ch, 3, sn=sn)
        self.shortcut = sn_conv2d(in_ch, out_ch, 1, padding=0, sn=sn) if in_ch != out_ch else None

    def _norm(self, bn: nn.Module, h: Tensor, cond: Tensor | None) -> Tensor:
        if self.conditional:
            if cond is None:
                raise ValueError("conditional GBlock called without conditioning")
            return bn(h, cond)
        return bn(h)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        h = F.relu(self._norm(self.bn1, x, cond))
        if self.upsample:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        h = self.conv1(h)
        h = self.conv2(F.relu(self._norm(self.bn2, h, cond)))
        skip = x if self.shortcut is None else self.shortcut(x)
        return h + skip


class MinibatchStdDev(nn.Module):
    """Append one feature map: the mean standard deviation of the features over a group of images
    (ProGAN's minibatch standard deviation, Karras et al. 2018), so the discriminator can see a
    batch's lack of variety -- a generator that drops rare modes (glasses, grey hair) produces
    groups whose features vary less than real groups'.

    Groups are **contiguous** runs of ``group`` images (``x[0:g]``, ``x[g:2g]``, ...), so a batch
    made by concatenating real and fake halves whose sizes are multiples of ``group`` never mixes
    the two in one group; a last partial group (``N % group`` images) is a group of its own (a
    single image gets 0). Output ``(N, C + 1, H, W)``.
    """

    def __init__(self, group: int, eps: float = 1e-8):
        super().__init__()
        if group < 2:
            raise ValueError(f"MinibatchStdDev: group must be >= 2, got {group}")
        self.group, self.eps = int(group), float(eps)

    def _stat(self, x: Tensor) -> Tensor:  # (M, g, C, H, W) -> (M, 1): mean over C, H, W of the std over g
        var = x.float().var(dim=1, unbiased=False)
        return (var + self.eps).sqrt().mean(dim=(1, 2, 3)).reshape(-1, 1)

    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        g = self.group
        full = n - n % g
        stats = []
        if full:
            stats.append(self._stat(x[:full].reshape(full // g, g, *x.shape[1:])).repeat_interleave(g, dim=0))
        if n % g:
            tail = x[full:]
            stats.append(self._stat(tail.unsqueeze(0)).expand(len(tail), 1))
        s = torch.cat(stats).to(x.dtype).reshape(n, 1, 1, 1).expand(n, 1, h, w)
        return torch.cat([x, s], dim=1)


class DBlock(nn.Module):
    """ResNet discriminator block: ``[ReLU]-conv3x3-ReLU-conv3x3[-avgpool2]`` plus a shortcut.

    ``preactivation=False`` is SNGAN's "optimized" first block (no ReLU on the raw image; shortcut
    is avgpool-then-conv1x1). The shortcut has a learnable 1x1 conv when the channel count changes
    or the block downsamples. Convs are spectrally normalised when ``sn``.
    """

    def __init__(self, in_ch: int, out_ch: int, *, downsample: bool = True, sn: bool = True,
                 preactivation: bool = True):
        super().__init__()
        self.downsample = downsample
        self.preactivation = preactivation
        self.conv1 = sn_conv2d(in_ch, out_ch, 3, sn=sn)
        self.conv2 = sn_conv2d(out_ch, out_ch, 3, sn=sn)
        learnable = in_ch != out_ch or downsample
        self.shortcut = sn_conv2d(in_ch, out_ch, 1, padding=0, sn=sn) if learnable else None

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.preactivation:
            if self.shortcut is not None:
                s = self.shortcut(s)
            if self.downsample:
                s = F.avg_pool2d(s, 2)
        else:
            if self.downsample:
                s = F.avg_pool2d(s, 2)
            if self.shortcut is not None:
                s = self.shortcut(s)
        return h + s


_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _init_targets(module: nn.Module):
    """``module``'s submodules except the gain/bias layers of conditional BNs (identity init)."""
    skip = {id(c) for m in module.modules() if isinstance(m, ConditionalBatchNorm2d) for c in m.children()}
    return [m for m in module.modules() if id(m) not in skip]


def _weight(m: nn.Module) -> Tensor:
    """The trainable weight tensor (the original one under a spectral-norm parametrization)."""
    if hasattr(m, "parametrizations") and "weight" in m.parametrizations:
        return m.parametrizations.weight.original
    return m.weight


def _resync_spectral_norm(m: nn.Module, iterations: int = 15) -> None:
    """After a spectrally normalised weight was overwritten in place, redo the power iterations
    ``spectral_norm`` ran at construction (its ``u``/``v`` still describe the old weight, so in eval
    mode -- which runs none -- sigma would be wrong and the layer's output off by orders of magnitude)."""
    if hasattr(m, "parametrizations") and "weight" in m.parametrizations:
        was_training = m.training
        m.train()
        for _ in range(iterations):
            m.weight  # noqa: B018 -- each training-mode access runs one power iteration
        m.train(was_training)


@torch.no_grad()
def init_normal_(module: nn.Module, std: float = 0.02, linear: bool = True) -> nn.Module:
    """DCGAN init (Radford et al.; pytorch/examples ``weights_init``), in place, returns ``module``.

    Conv / transposed-conv (and, if ``linear``, Linear / Embedding) weights ~ N(0, std), their
    biases 0; affine BatchNorm weights ~ N(1, std), biases 0. Conditional-BN embeddings and
    linears are left alone (their identity init is what makes them start as plain BN).
    """
    for m in _init_targets(module):
        if isinstance(m, _WEIGHTED) and (linear or not isinstance(m, (nn.Linear, nn.Embedding))):
            _weight(m).normal_(0.0, std)
            _resync_spectral_norm(m)
            if getattr(m, "bias", None) is not None:
                m.bias.zero_()
        elif isinstance(m, _NORMS) and m.affine:
            m.weight.normal_(1.0, std)
            m.bias.zero_()
    return module


@torch.no_grad()
def init_xavier_(module: nn.Module, gain: float = 1.0) -> nn.Module:
    """SNGAN-style init: Xavier-uniform conv/linear/embedding weights, zero biases (in place)."""
    for m in _init_targets(module):
        if isinstance(m, _WEIGHTED):
            nn.init.xavier_uniform_(_weight(m), gain=gain)
            _resync_spectral_norm(m)
            if getattr(m, "bias", None) is not None:
                m.bias.zero_()
    return module
