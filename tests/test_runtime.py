"""fairgen.common.runtime: a fixed torch thread count from config (capped at the usable cores, with a log
line), and bf16 only where it is native (else a warning, fp32, and a note in the stage's record)."""

import json
import logging

import pytest
import torch
from test_classifiers import TINY_SIZES, _write_real

from fairgen import cli
from fairgen.common import runtime


def _cfg(**kw):
    return {"device": "cpu", "threads": 1, "precision": "fp32", **kw}


def test_threads_come_from_config(monkeypatch):
    monkeypatch.setattr(runtime, "usable_cores", lambda: 2)
    torch.set_num_threads(2)
    out = runtime.configure(_cfg(threads=1))
    assert out["threads"] == 1 and torch.get_num_threads() == 1
    assert runtime.record()["threads"] == 1 and runtime.record()["notes"] == []


def test_threads_above_the_core_count_are_capped_with_a_log_line(monkeypatch, caplog):
    monkeypatch.setattr(runtime, "usable_cores", lambda: 1)
    with caplog.at_level(logging.WARNING, logger="fairgen.common.runtime"):
        out = runtime.configure(_cfg(threads=4))
    assert out["threads"] == 1 and torch.get_num_threads() == 1
    assert "threads 4 capped at the 1 usable core(s)" in caplog.text
    assert runtime.record()["threads_requested"] == 4


def test_bf16_without_native_support_warns_and_runs_fp32(monkeypatch, caplog):
    monkeypatch.setattr(runtime, "bf16_native", lambda device_type: False)
    with caplog.at_level(logging.WARNING, logger="fairgen.common.runtime"):
        out = runtime.configure(_cfg(precision="bf16"))
    assert out["precision"] == "fp32"
    assert "precision bf16 is not native on this cpu" in caplog.text
    rec = runtime.record()
    assert rec["precision"] == "fp32" and rec["precision_requested"] == "bf16" and len(rec["notes"]) == 1


def test_bf16_is_kept_where_native(monkeypatch):
    monkeypatch.setattr(runtime, "bf16_native", lambda device_type: True)
    assert runtime.configure(_cfg(precision="bf16"))["precision"] == "bf16"
    assert runtime.record()["notes"] == []


def test_a_stage_without_precision_gets_none_added(monkeypatch):
    out = runtime.configure({"device": "cpu", "threads": 1})  # e.g. quality: never autocasts
    assert "precision" not in out


def test_cuda_without_a_gpu_is_a_config_error(monkeypatch):
    from fairgen.common.errors import ConfigError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="device 'cuda' was requested"):
        runtime.configure(_cfg(device="cuda"))


def test_the_cli_records_the_fallback_in_the_stage_summary(tmp_path, monkeypatch, capsys):
    """`fairgen train-classifier --set precision=bf16` where bf16 is not native: it trains in fp32,
    and metrics.json says so (precision fp32, the note, the thread count)."""
    monkeypatch.setattr(runtime, "bf16_native", lambda device_type: False)
    array, index = _write_real(tmp_path / "real", sizes=TINY_SIZES)
    out = tmp_path / "cls"
    rc = cli.main(["train-classifier", "--method", "real", "--array", str(array), "--index", str(index),
                   "--out-dir", str(out), "--set", "device=cpu", "--set", "precision=bf16", "--set", "threads=1",
                   "--set", "classifier.epochs=1", "--set", "classifier.width=8", "--set", "classifier.bootstrap=5",
                   "--set", "classifier.batch_size=32"])
    assert rc == 0
    training = json.loads((out / "metrics.json").read_text())["training"]
    assert training["precision"] == "fp32" and training["threads"] == 1
    assert any("bf16 is not native" in note for note in training["runtime_notes"])
