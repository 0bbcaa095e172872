"""fairgen audit-predictions: k-group metrics against two oracles (fairlearn MetricFrame and
Aequitas) on the same files, the multinomial bootstrap, the paired comparison, the CLI's bad
input (exit 2, nothing written) and HTML escaping."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics as skm
from fairlearn import metrics as flm

from fairgen import cli
from fairgen.eval import fairness as F
from fairgen.report import audit_predictions as AP

N_BOOT = 50  # the oracle tests check the point estimates; intervals have their own tests


def make_file(tmp_path: Path, seed: int, k: int, n: int = 3000, name: str = "preds.csv", extra: bool = True,
              fmt: str = "csv") -> Path:
    """Aequitas-shaped predictions: score, label_value, an attribute with k groups (uneven
    sizes, different base rates) and a second attribute 'sex'."""
    rng = np.random.default_rng(seed)
    share = rng.dirichlet(np.full(k, 3.0))
    attr = rng.choice(np.array([f"g{i}" for i in range(k)], dtype=object), size=n, p=share)
    sex = rng.choice(np.array(["F", "M"], dtype=object), size=n)
    base = 0.2 + 0.5 * np.array([int(a[1:]) for a in attr]) / k
    y = (rng.random(n) < base).astype(int)
    score = np.round(np.clip(0.35 * y + 0.65 * rng.random(n) + 0.05 * (sex == "M"), 0, 1), 3)
    df = pd.DataFrame({"score": score, "label_value": y, "attr": attr})
    if extra:
        df["sex"] = sex
    path = tmp_path / name
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path


def run_audit(path: Path, out: Path, *args: str) -> dict:
    rc = cli.main(["audit-predictions", "--predictions", str(path), "--out-dir", str(out), "--n-boot", str(N_BOOT),
                   *args])
    assert rc == 0
    return json.loads((out / "audit.json").read_text())


FAIRLEARN = {
    "selection_rate": flm.selection_rate, "tpr": flm.true_positive_rate, "fpr": flm.false_positive_rate,
    "fnr": flm.false_negative_rate, "tnr": flm.true_negative_rate, "error_rate": skm.zero_one_loss,
    "accuracy": skm.accuracy_score, "balanced_accuracy": skm.balanced_accuracy_score,
    "precision": lambda yt, yp: skm.precision_score(yt, yp, zero_division=np.nan),
}


def fairlearn_frames(df: pd.DataFrame, sensitive):
    y, s = df["label_value"].to_numpy(), df["score"].to_numpy()
    p = (s >= 0.5).astype(int)
    return (flm.MetricFrame(metrics=FAIRLEARN, y_true=y, y_pred=p, sensitive_features=sensitive),
            flm.MetricFrame(metrics={"auc": skm.roc_auc_score, "average_precision": skm.average_precision_score},
                            y_true=y, y_pred=s, sensitive_features=sensitive),
            flm.MetricFrame(metrics={"base_rate": flm.selection_rate, "n": flm.count}, y_true=y, y_pred=y,
                            sensitive_features=sensitive))


def check_against_fairlearn(res: dict, frames, label_of) -> None:
    for mf in frames:
        by_group = mf.by_group
        for key in by_group.index:
            g = label_of(key)
            for m in by_group.columns:
                want = by_group.loc[key, m]
                got = res["by_group"][g][m] if m == "n" else res["by_group"][g][m]["value"]
                assert got == pytest.approx(float(want), rel=1e-12, abs=1e-12), (g, m)
        diff, ratio = mf.difference(), mf.ratio()
        for m in by_group.columns:
            if m == "n":
                continue
            b = res["between_groups"][m]
            assert b["difference"]["value"] == pytest.approx(float(diff[m]), rel=1e-12, abs=1e-12), m
            assert b["ratio"]["value"] == pytest.approx(float(ratio[m]), rel=1e-12, abs=1e-12), m
            assert b["group_min"] == pytest.approx(float(mf.group_min()[m]), rel=1e-12), m
            assert b["group_max"] == pytest.approx(float(mf.group_max()[m]), rel=1e-12), m


# --------------------------------------------------------------------------------------------
# oracle 1: fairlearn MetricFrame


@pytest.mark.parametrize("k", [2, 3, 8])
def test_by_group_difference_ratio_match_fairlearn(tmp_path, k):
    path = make_file(tmp_path, seed=k, k=k)
    res = run_audit(path, tmp_path / "out", "--group", "attr")["models"]["all rows"]["attr"]
    assert len(res["groups"]) == k
    df = pd.read_csv(path)
    check_against_fairlearn(res, fairlearn_frames(df, df["attr"]), str)


def test_intersection_of_two_columns_matches_fairlearn(tmp_path):
    path = make_file(tmp_path, seed=4, k=3, n=4000, fmt="parquet", name="preds.parquet")
    out = run_audit(path, tmp_path / "out", "--group", "attr", "--group", "sex", "--intersect")
    audits = out["models"]["all rows"]
    assert set(audits) == {"attr", "sex", "attr & sex"} and out["attributes"] == ["attr", "sex", "attr & sex"]
    res = audits["attr & sex"]
    assert len(res["groups"]) == 6
    df = pd.read_parquet(path)
    check_against_fairlearn(res, fairlearn_frames(df, df[["attr", "sex"]]), lambda key: f"attr={key[0]}, sex={key[1]}")
    check_against_fairlearn(audits["sex"], fairlearn_frames(df, df["sex"]), str)


# --------------------------------------------------------------------------------------------
# oracle 2: Aequitas (Group crosstabs, Bias disparities)

AEQUITAS = {"tpr": "tpr", "fpr": "fpr", "fnr": "fnr", "tnr": "tnr", "precision": "precision",
            "selection_rate": "pprev", "base_rate": "prev", "accuracy": "accuracy"}


def aequitas_tables(df: pd.DataFrame, attrs: list[str], ref: dict | None):
    pytest.importorskip("aequitas")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from aequitas.bias import Bias
        from aequitas.group import Group

        frame = df[["score", "label_value", *attrs]].copy()
        frame["score"] = (frame["score"] >= 0.5).astype(int)  # Aequitas wants 0/1 predictions here
        for a in attrs:
            frame[a] = frame[a].astype(object)
        xtab, _ = Group().get_crosstabs(frame, attr_cols=attrs)
        bias = Bias()
        if ref is None:
            bdf = bias.get_disparity_major_group(xtab, original_df=frame)
        else:
            bdf = bias.get_disparity_predefined_groups(xtab, original_df=frame, ref_groups_dict=ref)
    return bdf


@pytest.mark.parametrize("k,reference", [(3, None), (8, None), (3, "g1")])
def test_group_metrics_and_disparities_match_aequitas(tmp_path, k, reference):
    path = make_file(tmp_path, seed=10 + k, k=k)
    args = ["--reference", f"attr={reference}", "--reference", "sex=F"] if reference else []
    out = run_audit(path, tmp_path / "out", *args)  # defaults: every other column is an attribute
    assert out["attributes"] == ["attr", "sex"]
    df = pd.read_csv(path)
    bdf = aequitas_tables(df, ["attr", "sex"], None if reference is None else {"attr": reference, "sex": "F"})
    for attr in ("attr", "sex"):
        res = out["models"]["all rows"][attr]
        check_against_fairlearn(res, fairlearn_frames(df, df[attr]), str)  # both oracles, the same file
        rows = bdf[bdf["attribute_name"] == attr]
        assert sorted(rows["attribute_value"]) == res["groups"]
        refs = set(rows["tpr_ref_group_value"])
        assert refs == {res["reference"]}
        for _, r in rows.iterrows():
            g = r["attribute_value"]
            assert res["by_group"][g]["n"] == r["group_size"]
            for ours, theirs in AEQUITAS.items():
                assert res["by_group"][g][ours]["value"] == pytest.approx(r[theirs], rel=1e-12), (g, ours)
                if f"{theirs}_disparity" in r:
                    got = res["vs_reference"][g][ours]["disparity"]["value"]
                    assert got == pytest.approx(r[f"{theirs}_disparity"], rel=1e-9), (g, ours)


# --------------------------------------------------------------------------------------------
# the bootstrap


def test_metrics_from_resampled_cells_equal_sklearn_on_the_expanded_rows():
    """A multinomial draw of cells is a resample of rows: rebuild those rows and check every
    metric, AUC and AP included (exact score levels), against sklearn on them."""
    rng = np.random.default_rng(0)
    n = 900
    g = rng.integers(0, 3, n)
    y = rng.integers(0, 2, n)
    s = np.round(rng.random(n) * 0.6 + 0.3 * y, 2)
    p = (s >= 0.5).astype(int)
    data = F.group_data(y, p, g, s)
    assert data.binning["method"] == "exact"
    draws = next(F._k_draws(data, 3, seed=1))
    rates = F._k_rates(*F._k_cells(data, draws))
    levels = np.unique(s)
    for b in range(3):
        for j in range(3):
            counts = draws[b, j]
            kind = data.cell_kind
            yy = np.repeat(kind // 2, counts)
            pp = np.repeat(kind % 2, counts)
            ss = np.repeat(levels[data.cell_bin], counts)
            assert counts.sum() == (g == j).sum()  # stratified: the group keeps its size
            assert rates["tpr"][b, j] == pytest.approx(flm.true_positive_rate(yy, pp))
            assert rates["precision"][b, j] == pytest.approx(skm.precision_score(yy, pp))
            assert rates["auc"][b, j] == pytest.approx(skm.roc_auc_score(yy, ss))
            assert rates["average_precision"][b, j] == pytest.approx(skm.average_precision_score(yy, ss))


def test_multinomial_resamples_have_the_row_bootstrap_spread():
    """The spread of a group's selection rate over the resamples is the row bootstrap's,
    sqrt(p (1 - p) / n), and the 95% interval covers the point estimate."""
    rng = np.random.default_rng(2)
    n = 4000
    g = rng.integers(0, 4, n)
    y = rng.integers(0, 2, n)
    p = (rng.random(n) < 0.2 + 0.1 * g).astype(int)
    res = F.group_audit(F.group_data(y, p, g), n_boot=2000, seed=3)
    for j, label in enumerate(res["groups"]):
        v = res["by_group"][label]["selection_rate"]
        se = np.sqrt(v["value"] * (1 - v["value"]) / (g == j).sum())
        assert (v["upper"] - v["lower"]) == pytest.approx(2 * 1.96 * se, rel=0.1)
        assert v["lower"] <= v["value"] <= v["upper"]


def test_two_groups_agree_with_the_binary_metrics_and_fold_like_them():
    rng = np.random.default_rng(5)
    n = 2000
    c = rng.integers(0, 2, n)
    y = rng.integers(0, 2, n)
    s = np.round(rng.random(n), 3)
    p = (s >= 0.5).astype(int)
    binary = F.evaluate(y, p, c, score=s, n_boot=0)
    res = F.group_audit(F.group_data(y, p, c, s), n_boot=300, seed=0)
    for m in F.RATE_METRICS + ("auc",):
        for g in ("0", "1"):
            assert res["by_group"][g][m]["value"] == pytest.approx(binary["groups"][g][m], rel=1e-12), (g, m)
    assert res["between_groups"]["selection_rate"]["difference"]["value"] == pytest.approx(
        binary["fairness"]["demographic_parity_difference"])
    assert res["between_groups"]["selection_rate"]["ratio"]["value"] == pytest.approx(
        binary["fairness"]["demographic_parity_ratio"])
    # the folded interval of |SR0 - SR1| contains the point estimate (it starts at 0 when it may be 0)
    d = res["between_groups"]["selection_rate"]["difference"]
    assert d["lower"] <= d["value"] <= d["upper"]


def test_same_seed_same_intervals_and_more_resamples_extend_them():
    rng = np.random.default_rng(1)
    g, y, p = rng.integers(0, 3, 500), rng.integers(0, 2, 500), rng.integers(0, 2, 500)
    data = F.group_data(y, p, g)
    a = F.group_audit(data, n_boot=100, seed=4)
    assert a == F.group_audit(data, n_boot=100, seed=4)
    assert a != F.group_audit(data, n_boot=100, seed=5)
    short = np.concatenate(list(F._k_draws(data, 40, 9)))
    long = np.concatenate(list(F._k_draws(data, 90, 9)))
    np.testing.assert_array_equal(short, long[:40])


def test_undefined_values_are_none_with_a_reason():
    g = np.repeat(["a", "b"], 50)
    y = np.r_[np.tile([0, 1], 25), np.zeros(50, int)]  # group b has no positives
    p = np.r_[np.tile([0, 1], 25), np.tile([0, 1], 25)]
    res = F.group_audit(F.group_data(y, p, g), n_boot=20)
    assert res["by_group"]["b"]["tpr"]["value"] is None
    assert "no rows with label 1" in res["undefined"]["b/tpr"]
    assert res["vs_reference"]["b"]["tpr"]["verdict"] in ("undefined", "reference")
    assert res["between_groups"]["tpr"]["difference"]["value"] is None


# --------------------------------------------------------------------------------------------
# the paired comparison


def test_compare_paired_differences(tmp_path):
    path = tmp_path / "two.csv"
    AP.example_predictions({}, str(path), rows=3000, seed=1, models=2)
    out = run_audit(path, tmp_path / "out", "--model", "model", "--group", "race", "--compare", "model_0", "model_1")
    cmp = out["comparison"]["attributes"]["race"]
    a = out["models"]["model_0"]["race"]
    b = out["models"]["model_1"]["race"]
    for m in ("selection_rate", "tpr", "error_rate"):
        entry = cmp["between_groups"][m]["difference"]
        assert entry["a"] == pytest.approx(a["between_groups"][m]["difference"]["value"])
        assert entry["b"] == pytest.approx(b["between_groups"][m]["difference"]["value"])
        assert entry["difference"] == pytest.approx(entry["b"] - entry["a"])
        for grp in a["groups"]:
            v = cmp["by_group"][grp][m]
            assert v["difference"] == pytest.approx(b["by_group"][grp][m]["value"] - a["by_group"][grp][m]["value"])
    # a model compared with itself: every paired difference is exactly 0
    y, p, g = np.random.default_rng(0).integers(0, 2, (3, 400))
    same = F.paired_group_audit(y, p, p, g, n_boot=50)
    gap = same["between_groups"]["tpr"]["difference"]
    assert gap["lower"] == 0 == gap["upper"]


# --------------------------------------------------------------------------------------------
# outputs, bad input, escaping


def test_outputs_table_and_report(tmp_path):
    path = make_file(tmp_path, seed=1, k=3, n=1200)
    out_dir = tmp_path / "out"
    run_audit(path, out_dir, "--group", "attr", "--min-group-size", "400")
    assert sorted(p.name for p in out_dir.iterdir()) == ["audit.json", "figures", "metrics.csv", "metrics.parquet",
                                                          "report.html"]
    table, meta = AP.fio.read_parquet(out_dir / "metrics.parquet", AP.TABLE_KIND)
    assert meta["input_sha256"] == AP._provenance(path, {"reference": {}}, 0)["input_sha256"]
    assert set(table["scope"]) == {"group", "difference", "ratio"}
    assert pd.read_csv(out_dir / "metrics.csv").shape == table.shape
    res = json.loads((out_dir / "audit.json").read_text())["models"]["all rows"]["attr"]
    small = [g for g in res["groups"] if res["by_group"][g]["n"] < 400]
    assert res["small_groups"] == small and small  # flagged, not dropped
    assert set(table.loc[table["small_group"], "group"]) == set(small)
    html = (out_dir / "report.html").read_text()
    assert 'id="passfail-m0-a0"' in html and "Small group" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html


def test_html_in_names_is_escaped(tmp_path):
    evil = "<script>alert(1)</script>"
    df = pd.DataFrame({"score": [0.1, 0.9, 0.8, 0.3] * 20, "label_value": [0, 1, 1, 0] * 20,
                       evil: [evil, "b&c", evil, "<b>x</b>"] * 20})
    path = tmp_path / "evil.csv"
    df.to_csv(path, index=False)
    run_audit(path, tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<script" not in html and "<b>x</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;x&lt;/b&gt;" in html


def bad_cases(tmp_path: Path) -> dict:
    base = pd.DataFrame({"score": [0.2, 0.7, 0.9, 0.4, 0.6, 0.1], "label_value": [0, 1, 1, 0, 1, 0],
                         "grp": ["a", "b", "a", "b", "a", "b"]})
    cases = {}

    def case(name, df, args, needles):
        path = tmp_path / f"{name}.csv"
        df.to_csv(path, index=False)
        cases[name] = (path, args, needles)

    case("missing_column", base, ["--group", "race"], ["'race'", "not found"])
    case("label_not_binary", base.assign(label_value=[0, 1, 2, 0, 1, 0]), [], ["'label_value'", "row 2", "2"])
    case("score_out_of_range", base.assign(score=[0.2, 1.5, 0.9, 0.4, 0.6, 0.1]), [], ["'score'", "row 1", "1.5"])
    case("nan", base.assign(score=[0.2, 0.7, np.nan, 0.4, 0.6, 0.1]), [], ["'score'", "row 2", "NaN"])
    case("nan_group", base.assign(grp=["a", "b", "a", None, "a", "b"]), [], ["'grp'", "row 3"])
    case("single_group", base.assign(grp="a"), [], ["'grp'", "single value 'a'"])
    two = pd.concat([base.assign(model="A"), base.assign(model="B").iloc[:5]])
    case("compare_rows", two, ["--model", "model", "--compare", "A", "B"], ["'A' (6 rows)", "'B' (5 rows)"])
    shuffled = pd.concat([base.assign(model="A"), base.assign(model="B", label_value=[0, 1, 1, 1, 1, 0])])
    case("compare_labels", shuffled, ["--model", "model", "--compare", "A", "B"], ["row 3", "label"])
    case("empty", base.iloc[:0], [], ["no rows"])
    case("reference_value", base, ["--reference", "grp=c"], ["reference group 'c'", "'grp'", "'a', 'b'"])
    case("reference_column", base, ["--reference", "race=a"], ["'race' is not an audited group column"])
    return cases


@pytest.mark.parametrize("name", ["missing_column", "label_not_binary", "score_out_of_range", "nan", "nan_group",
                                  "single_group", "compare_rows", "compare_labels", "empty", "reference_value",
                                  "reference_column"])
def test_bad_input_exits_2_names_the_culprit_and_writes_nothing(tmp_path, capsys, name):
    path, args, needles = bad_cases(tmp_path)[name]
    out = tmp_path / "out"
    rc = cli.main(["audit-predictions", "--predictions", str(path), "--out-dir", str(out), "--n-boot", "10", *args])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "error:" in err and str(path) in err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not out.exists()
    assert not any(p.name.startswith(".out.") for p in tmp_path.iterdir())


def test_threshold_allows_scores_on_another_scale(tmp_path):
    df = pd.DataFrame({"score": [-2.0, 3.0, 1.5, -0.5] * 10, "label_value": [0, 1, 1, 0] * 10,
                       "grp": ["a", "b", "b", "a"] * 10})
    path = tmp_path / "logits.parquet"
    df.to_parquet(path, index=False)
    res = run_audit(path, tmp_path / "out", "--threshold", "0")["models"]["all rows"]["grp"]
    assert res["by_group"]["a"]["accuracy"]["value"] == 1.0


def test_prediction_column_without_scores(tmp_path):
    df = pd.DataFrame({"pred": [0, 1, 1, 0] * 10, "y": [0, 1, 0, 0] * 10, "grp": ["a", "b", "b", "a"] * 10})
    path = tmp_path / "p.csv"
    df.to_csv(path, index=False)
    res = run_audit(path, tmp_path / "out", "--prediction", "pred", "--label", "y")["models"]["all rows"]["grp"]
    assert "auc" not in res["metrics"] and res["by_group"]["b"]["precision"]["value"] == 0.5


def test_example_predictions_is_seeded(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    AP.example_predictions({}, str(a), rows=500, seed=3)
    AP.example_predictions({}, str(b), rows=500, seed=3)
    assert a.read_bytes() == b.read_bytes()
    df = pd.read_csv(a)
    assert list(df.columns) == ["score", "label_value", "race", "sex"] and len(df) == 500


@pytest.mark.e2e
def test_snakemake_target_standalone(tmp_path):
    """`snakemake audit_predictions --config predictions=FILE` with the project's config."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    AP.example_predictions({}, str(tmp_path / "preds.parquet"), rows=2000, seed=2)
    r = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(root / "Snakefile"), "--directory", str(tmp_path),
                        "--configfile", str(root / "config" / "config.yaml"), "--cores", "1", "audit_predictions",
                        "--config", f"predictions={tmp_path / 'preds.parquet'}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "results" / "audit_predictions"
    assert (out / "report.html").is_file() and (out / "metrics.parquet").is_file()
    assert (tmp_path / "results" / "logs" / "audit_predictions.log").is_file()
    assert set(json.loads((out / "audit.json").read_text())["models"]["all rows"]) == {"race", "sex"}


def test_pipeline_audit_uses_the_same_audit_for_its_pass_fail_table(tmp_path):
    """The pipeline's audit report shows, per classifier, the pass/fail table of
    fairness.group_audit on its test predictions: the same code as audit-predictions."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent / "browser"))
    import report_inputs as ri

    from fairgen.report import audit as report
    from fairgen.report import predictions_html as audit_report

    cfg = ri.tiny_cfg(methods=["real", "reweighing"], runs=[], n_boot=30)
    paths = ri.make_inputs(tmp_path / "in", cfg)
    html, _, _ = report.build(cfg, **paths)
    for k, method in enumerate(cfg["classifier"]["methods"]):
        df, _ = AP.fio.read_parquet(Path(paths["classifiers_dir"]) / method / "predictions.parquet", "predictions")
        group = np.where(df["c"] == 1, "Male = 1", "Male = 0")
        res = F.group_audit(F.group_data(df["y_true"], df["y_pred"], group, df["score"]), n_boot=30,
                            level=cfg["classifier"]["ci_level"], seed=cfg["seed"])
        res["disparity_metrics"] = list(F.DISPARITY_METRICS)
        assert f'id="passfail-classifier-{k}"' in html
        for row in audit_report.passfail_table(res)["rows"]:
            for cell in row[1:]:
                assert f"{cell['text']}<span class=\"sub\">{cell['sub']}</span>" in html
