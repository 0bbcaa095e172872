"""The run cost of a workflow: Snakemake's benchmark files (on every rule) read by
fairgen.report.run_cost, the table of the audit report."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fairgen.common.errors import DataError
from fairgen.report.run_cost import read_benchmark, run_cost

ROOT = Path(__file__).resolve().parent.parent
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _write(path, s, rss, cpu):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{s}\t0:00:{int(s):02d}\t{rss}\t900.0\t{rss}\t{rss}\t0.1\t0.2\t50.0\t{cpu}\n")
    return path


def test_reads_what_snakemake_writes(tmp_path):
    """A real Snakemake job with a benchmark directive, read back."""
    (tmp_path / "Snakefile").write_text(
        'rule work:\n    output: "out.txt"\n    benchmark: "bench/work.tsv"\n'
        '    shell: "python -c \\"import time; t = time.time()\\nwhile time.time() - t < 0.5: pass\\" && touch {output}"\n')
    r = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "out.txt"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    row = read_benchmark(tmp_path / "bench" / "work.tsv")
    assert row["wall_s"] >= 0.5
    assert row["max_rss_mb"] is None or row["max_rss_mb"] > 1
    assert row["cpu_s"] is None or row["cpu_s"] >= 0


def test_totals_and_names(tmp_path):
    b = tmp_path / "results" / "benchmarks"
    files = [_write(b / "dataset.tsv", 2.0, 100.0, 1.5), _write(b / "train_gan" / "fgan_dp.tsv", 30.0, 900.0, 29.0),
             _write(b / "classifiers" / "real.tsv", 10.0, 700.5, 9.0)]
    cost = run_cost(files)
    assert [r["job"] for r in cost["rows"]] == ["train_gan/fgan_dp", "classifiers/real", "dataset"]  # slowest first
    assert cost["total_wall_s"] == pytest.approx(42.0) and cost["total_cpu_s"] == pytest.approx(39.5)
    assert cost["peak_rss_mb"] == pytest.approx(900.0)
    assert run_cost([])["rows"] == []


def test_unmeasured_values_are_none(tmp_path):
    path = tmp_path / "b.tsv"
    path.write_text(HEADER + "1.5\t0:00:01\t-\t-\t-\t-\t-\t-\t-\t-\n")
    assert read_benchmark(path) == {"wall_s": 1.5, "cpu_s": None, "max_rss_mb": None}


@pytest.mark.parametrize("text, needle", [
    ("s\th:m:s\n1.0\t0:00:01\n", "lacks column(s) max_rss, cpu_time"),
    (HEADER, "has no rows"),
    ("", "not a Snakemake benchmark TSV"),
])
def test_bad_benchmark_files_name_the_file(tmp_path, text, needle):
    path = tmp_path / "bad.tsv"
    path.write_text(text)
    with pytest.raises(DataError, match=re.escape(str(path)) + ".*" + re.escape(needle)):
        read_benchmark(path)
    with pytest.raises(DataError, match="nowhere.tsv: benchmark file not found"):
        read_benchmark(tmp_path / "nowhere.tsv")


def _rule_blocks():
    """(file, rule name, block text) of every rule and `use rule` of the workflow."""
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        starts = [(m.start(), m.group(1) or m.group(2)) for m in
                  re.finditer(r"^(?:rule (\w+):|use rule \w+ as (\w+) with:)", text, re.M)]
        for (start, name), (end, _) in zip(starts, starts[1:] + [(len(text), None)]):
            yield smk.name, name, text[start:end]


def test_every_rule_with_a_job_has_a_benchmark_beside_its_log():
    """Every rule that runs a command (it has a log) declares a benchmark file, named like its log
    under results/benchmarks/ (the audit's run-cost table reads them)."""
    checked = 0
    for smk, name, block in _rule_blocks():
        log = re.search(r'^    log:\n\s+"([^"]+)"', block, re.M)
        if not log:
            assert "shell:" not in block and "run:" not in block, f"{smk}: rule {name} runs a job without a log"
            continue
        bench = re.search(r'^    benchmark:\n\s+"([^"]+)"', block, re.M)
        assert bench, f"{smk}: rule {name} has no benchmark"
        expected = log.group(1).replace("results/logs/", "results/benchmarks/", 1).removesuffix(".log") + ".tsv"
        assert bench.group(1) == expected, (smk, name)
        checked += 1
    assert checked >= 25
