"""The paper the audit compares with: Table 1 of Sattigeri et al. (2019) as published (CelebA,
c = Male, y = Attractive) and the columns of the report's paper-reference tables."""

from __future__ import annotations

# Sattigeri et al. (2019), Table 1: CelebA, c = Male, y = Attractive, groups Male=0 / Male=1.
PAPER = {
    "citation": ("P. Sattigeri, S. C. Hoffman, V. Chenthamarakshan, K. R. Varshney: Fairness GAN: "
                 "Generating datasets with fairness properties using a generative adversarial network. "
                 "IBM J. Res. Dev. 63(4/5), 2019 (ICLR 2019 SafeML workshop), Table 1"),
    "protected": "Male",
    "outcome": "Attractive",
    "rows": (
        {"method": "real", "paper_name": "No debiasing", "error_rate": 0.2023, "error_rate_gap": 0.0447,
         "equal_opportunity_difference": 0.3009, "fpr_c0": 0.4043, "fpr_c1": 0.0927, "fnr_c0": 0.1213,
         "fnr_c1": 0.4222, "error_rate_c0": 0.2196, "error_rate_c1": 0.1749},
        {"method": "fgan_dp", "paper_name": "FGAN-DP", "error_rate": 0.2910, "error_rate_gap": 0.0204,
         "equal_opportunity_difference": 0.2253},
        {"method": "fgan_eqopp", "paper_name": "FGAN-EqOpp", "error_rate": 0.2657, "error_rate_gap": 0.0507,
         "equal_opportunity_difference": 0.2253},
        {"method": "reweighing", "paper_name": "Reweighing", "error_rate": 0.2447, "error_rate_gap": 0.1144,
         "equal_opportunity_difference": 0.0123},
    ),
}
PAPER_COLUMNS = (
    ("error_rate", "Error rate"),
    ("error_rate_c0", "err (c=0)"),
    ("error_rate_c1", "err (c=1)"),
    ("error_rate_gap", "Error-rate gap (paper\u2019s \u201cDP\u201d)"),
    ("equal_opportunity_difference", "EO diff. (paper\u2019s \u201cEO\u201d)"),
    ("demographic_parity_difference", "DP diff. (not in paper)"),
)
PAPER_GROUP_COLUMNS = (
    ("fpr_c0", "FPR (c=0)"),
    ("fpr_c1", "FPR (c=1)"),
    ("fnr_c0", "FNR (c=0)"),
    ("fnr_c1", "FNR (c=1)"),
    ("error_rate_c0", "err (c=0)"),
    ("error_rate_c1", "err (c=1)"),
)
