"""What limits debiasing with counterfactual pairs: the measures of ``fairgen pair-diagnostics``
(:mod:`fairgen.stages.pair_diagnostics`).

On the first ``min(len(set), 2000)`` pairs of a pair set (:mod:`fairgen.data.pairs`) and the real
test split, it measures:

* **flip success** -- a c reader trained on the real train crops (the own CNN of
  :mod:`fairgen.eval.features`, its c output; cached) reads c=0 on G(z, 0) and c=1 on G(z, 1): the
  share of pairs where both members read as requested, and its accuracy on real test images;
* **identity kept** -- the attribute reader (every other CelebA attribute, trained on the real
  train crops; cached) agrees across a pair: the mean over attributes of the share of pairs
  whose members get the same 0/1 reading, against the same share for unpaired members
  (G(z, 0) beside G(z', 1) of another pair), the level of agreement that owes nothing to z;
* per downstream classifier (``model.pt`` of ``fairgen train-classifier``):

  - **c-sensitivity on pairs**: mean |logit f(G(z,1)) - logit f(G(z,0))| and its signed mean;
  - **c-sensitivity on real images**: within each true outcome y, the mean logit of real test
    images with c=1 minus that with c=0, averaged over y (the group gap the classifier adds
    beyond the outcome; real images have no counterfactual, so this is the closest reading);
  - **domain separability**: held-out accuracy of a logistic-regression probe on the
    classifier's penultimate features telling real test images from generated pair members
    (balanced; 0.5 = the features cannot tell them apart).

Writes one JSON file.
"""

from __future__ import annotations

import numpy as np

from fairgen.common.errors import DataError

MAX_PAIRS = 2000


def domain_probe(real_features: np.ndarray, generated_features: np.ndarray, seed: int) -> dict:
    """Held-out accuracy of a logistic regression telling real (1) from generated (0) features:
    as many of each (the smaller count), half of each for fitting and half for scoring."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    n = min(len(real_features), len(generated_features))
    if n < 4:
        raise DataError(f"domain probe: needs at least 4 real and 4 generated images, got {len(real_features)} "
                        f"and {len(generated_features)}")
    r = real_features[rng.permutation(len(real_features))[:n]]
    g = generated_features[rng.permutation(len(generated_features))[:n]]
    half = n // 2
    x_fit = np.concatenate([r[:half], g[:half]])
    y_fit = np.r_[np.ones(half), np.zeros(half)]
    x_eval = np.concatenate([r[half:], g[half:]])
    y_eval = np.r_[np.ones(n - half), np.zeros(n - half)]
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(x_fit, y_fit)
    return {"accuracy": float(probe.score(x_eval, y_eval)), "n_per_domain": int(n),
            "probe": "standardised logistic regression, fit on half of each domain, scored on the other half"}


def c_sensitivity_real(logits: np.ndarray, y: np.ndarray, c: np.ndarray) -> float | None:
    """Mean over y of (mean logit at c=1 - mean logit at c=0) among real images with that y."""
    gaps = [logits[(y == v) & (c == 1)].mean() - logits[(y == v) & (c == 0)].mean()
            for v in (0, 1) if ((y == v) & (c == 1)).any() and ((y == v) & (c == 0)).any()]
    return float(np.mean(gaps)) if gaps else None
