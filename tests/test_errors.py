"""Which errors end in one stderr line (wrong use) and which keep their traceback (bugs)."""

import sys

import pytest

from conftest import decoding_options
from fairseq_gmlm.errors import CheckpointError, UsageError
from fairseq_gmlm.fairseq_fixes.checkpoint_loading import read_checkpoint
from fairseq_gmlm.fairseq_fixes.error_reporting import is_usage_error, raised_by_plugin, report_usage_errors_briefly
from fairseq_gmlm.optim.adamw_fused import parse_betas


def usage_error() -> UsageError:
    with pytest.raises(UsageError) as caught:
        decoding_options(max_iter=-1).check()
    return caught.value


def bug_in_the_plugin() -> ValueError:
    """A plain ValueError raised in the plugin's own frame: float() on a malformed value, not a deliberate check."""
    with pytest.raises(ValueError) as caught:
        parse_betas("(0.9, x)")
    assert not isinstance(caught.value, UsageError) and raised_by_plugin(caught.value.__traceback__)
    return caught.value


def truncated_checkpoint() -> CheckpointError:
    def load(path):
        raise EOFError("Ran out of input")

    with pytest.raises(CheckpointError) as caught:
        read_checkpoint(load, "/nonexistent/checkpoint_last.pt")
    return caught.value


def test_usage_error_is_a_value_error_and_reported_briefly():
    error = usage_error()
    assert isinstance(error, ValueError) and is_usage_error(error)


def test_plain_value_error_raised_inside_the_plugin_is_not_a_usage_error():
    assert not is_usage_error(bug_in_the_plugin())


def test_checkpoint_error_is_still_reported_briefly():
    assert is_usage_error(truncated_checkpoint())


def test_excepthook_prints_one_line_for_usage_errors_and_the_traceback_for_bugs(monkeypatch, capsys):
    monkeypatch.delenv("FAIRSEQ_GMLM_TRACEBACK", raising=False)
    monkeypatch.setattr(sys, "excepthook", sys.__excepthook__)
    report_usage_errors_briefly()
    for error in (usage_error(), truncated_checkpoint()):
        sys.excepthook(type(error), error, error.__traceback__)
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1 and ": error: " in lines[0] and str(error) in lines[0]
    bug = bug_in_the_plugin()
    sys.excepthook(type(bug), bug, bug.__traceback__)
    err = capsys.readouterr().err
    assert "Traceback" in err and "adamw_fused.py" in err
