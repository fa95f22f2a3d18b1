"""The resbak Python package, as a program that installed the wheel uses it."""

import json
import logging
import os
import re
import fcntl
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import resbak

REPO = Path(__file__).resolve().parents[2]


def store_text(n):
    """An experience store holding n experiences."""
    return json.dumps({"experiences": [{"pnl": i} for i in range(n)], "meta": {"v": 1}})


def removals(caplog):
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Removed old backup: ")]


def test_a_growing_store_saved_twelve_times_keeps_ten_versions_and_survives_a_truncated_save(
    tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="resbak")
    path = tmp_path / "experiences.json"
    for n in range(1, 13):
        resbak.write_with_backup(path, store_text(n))
    copies = resbak.list_file_backups(path)
    assert len(copies) == 10
    assert len({c["sha256"] for c in copies}) == 10
    assert [c["items"] for c in copies] == list(range(11, 1, -1))
    assert len(removals(caplog)) == 1
    assert sum(r.getMessage().startswith("Backup created: ") for r in caplog.records) == 11

    # A save goes wrong and leaves a truncated store; the program restores on its next start.
    resbak.write_with_backup(path, store_text(13)[:40])
    restored = resbak.restore_file(path)
    assert restored["items"] == 12
    assert len(json.loads(path.read_text())["experiences"]) == 12
    assert restored["passed_over"] == []  # chosen before the truncated file is saved
    assert any("does not parse as JSON" in r.getMessage() for r in caplog.records
               if r.levelno == logging.WARNING)
    copies = resbak.list_file_backups(path)
    assert [c["json_valid"] for c in copies][:2] == [False, True]
    assert len({c["sha256"] for c in copies}) == 10


def test_write_with_backup_takes_bytes_and_reports_the_copy(tmp_path):
    path = tmp_path / "store.bin"
    first = resbak.write_with_backup(path, b"one")
    assert first["backup"] is None
    second = resbak.write_with_backup(str(path), bytearray(b"two"), keep=3)
    assert Path(second["backup"]).read_bytes() == b"one"
    assert second["json_valid"] is None and second["removed"] == []
    assert path.read_bytes() == b"two"


def test_write_with_backup_in_strict_mode_raises_when_no_copy_can_be_made(tmp_path):
    path = tmp_path / "store.json"
    path.write_text("[1]")
    (tmp_path / "backups").write_text("a file where the copies folder goes")
    with pytest.raises(resbak.IoError) as failure:
        resbak.write_with_backup(path, "[2]", strict=True)
    assert failure.value.kind == "io" and failure.value.exit_code == 2
    assert path.read_text() == "[1]"
    report = resbak.write_with_backup(path, "[2]")
    assert "without a backup" in report["warnings"][0]
    assert path.read_text() == "[2]"


def test_backup_file_skips_an_unchanged_file_and_returns_none_for_a_missing_one(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="resbak")
    path = tmp_path / "store.json"
    assert resbak.backup_file(path) is None
    path.write_text(store_text(2))
    made = resbak.backup_file(path)
    assert made["unchanged"] is False and made["items"] == 2
    assert made["checksum"]["len"] == path.stat().st_size
    again = resbak.backup_file(path)
    assert again["unchanged"] is True and again["backup"] == made["backup"]
    assert any("unchanged since" in r.getMessage() for r in caplog.records)


def test_verify_file_backups_finds_a_damaged_copy_and_restore_refuses_it(tmp_path):
    path = tmp_path / "store.json"
    for n in (1, 2):
        path.write_text(store_text(n))
        resbak.backup_file(path)
    oldest = resbak.list_file_backups(path)[-1]["path"]
    Path(oldest).write_text(store_text(5))
    report = resbak.verify_file_backups(path)
    assert (report["ok"], report["problems"]) == (1, 1)
    assert [r["status"] for r in report["results"]] == ["ok", "damaged"]
    assert [c["status"] for c in resbak.list_file_backups(path)] == ["ok", "damaged"]
    with pytest.raises(resbak.DamagedCopyError) as failure:
        resbak.restore_file(path, Path(oldest).name)
    assert failure.value.exit_code == 1


def test_restore_file_latest_exact_and_named(tmp_path):
    path = tmp_path / "store.json"
    path.write_text(store_text(3))
    good = resbak.backup_file(path)["backup"]
    path.write_text(store_text(4)[:10])
    resbak.backup_file(path)
    path.write_text("")
    latest = resbak.restore_file(path)
    assert latest["restored"] == good and latest["passed_over"][0]["reason"].startswith("does not")
    exact = resbak.restore_file(path, "exact")
    assert exact["json_valid"] is False
    named = resbak.restore_file(path, Path(good).name)
    assert named["items"] == 3 and json.loads(path.read_text())["experiences"][2] == {"pnl": 2}


def test_failures_raise_the_error_class_of_their_kind(tmp_path):
    with pytest.raises(resbak.NoFileBackupsError):
        resbak.restore_file(tmp_path / "never.json")
    with pytest.raises(resbak.InvalidKeepError):
        resbak.backup_file(tmp_path / "x.json", keep=0)
    with pytest.raises(resbak.UsageError):
        resbak._call(["file", "list"])  # no PATH: the command line's own error
    with pytest.raises(resbak.Error):
        resbak.restore_file(tmp_path / "x.json", "no-such-copy")
    assert issubclass(resbak.UnknownStrategyError, resbak.Error)


def test_there_is_an_error_class_for_every_kind_the_library_reports():
    source = REPO / "src" / "error.rs"
    if not source.exists():
        pytest.skip("not run from the repository")
    kinds = set(re.findall(r'=> "([a-z_]+)",', source.read_text()))
    assert kinds, "no kinds found in src/error.rs"
    assert kinds <= set(resbak.KINDS), kinds - set(resbak.KINDS)


def make_results(root):
    strategy = root / "results" / "btc_sma_cross"
    (strategy / "runs" / "fast10").mkdir(parents=True)
    (strategy / "trades.csv").write_text("time,pnl\n1,2\n")
    (strategy / "runs" / "fast10" / "metrics.json").write_text('{"sharpe": 1.5}')
    return strategy


def test_strategy_backup_list_verify_and_restore(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="resbak")
    strategy = make_results(tmp_path)
    folders = {"results_dir": tmp_path / "results", "backup_dir": tmp_path / "backups"}
    made = resbak.backup("btc_sma_cross", keep=5, **folders)
    assert made[0]["status"] == "backed_up"
    assert any(r.getMessage() == f"Backup created: {made[0]['archive']}" for r in caplog.records)
    assert resbak.backup(["btc_sma_cross"], **folders)[0]["status"] == "unchanged"

    listed = resbak.list(**folders)
    assert [b["archive"] for b in listed] == [made[0]["archive"]]
    assert listed[0]["files"] == 2
    checked = resbak.verify(deep=True, **folders)
    assert (checked["checked"], checked["problems"]) == (1, 0)

    restored = resbak.restore("btc_sma_cross", to=tmp_path / "review", **folders)
    assert restored["files"] == 2
    copy = tmp_path / "review" / "runs" / "fast10" / "metrics.json"
    assert copy.read_text() == (strategy / "runs" / "fast10" / "metrics.json").read_text()

    with pytest.raises(resbak.DestinationExistsError):
        resbak.restore("btc_sma_cross", **folders)
    with pytest.raises(resbak.Error) as failure:
        resbak.backup("no_such_strategy", **folders)
    assert failure.value.kind in ("unknown_strategy", "unknown_name")


def installed_command():
    command = shutil.which("resbak", path=os.path.dirname(sys.executable))
    if command is None:
        pytest.skip("the resbak command is not installed beside this Python")
    return command


def test_the_resbak_command_runs_the_same_command_line(tmp_path):
    command = installed_command()
    version = subprocess.run([command, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("resbak ")
    path = tmp_path / "store.json"
    path.write_text("[1, 2]")
    made = subprocess.run([command, "--json", "file", "backup", str(path)],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["items"] == 2
    missing = subprocess.run([command, "file", "restore", str(tmp_path / "x"), "--latest"],
                             capture_output=True, text=True)
    assert missing.returncode == 2
    assert missing.stderr.startswith("resbak: there are no backups of")


def test_the_gil_is_released_while_resbak_waits_on_the_copies_folder(tmp_path):
    path = tmp_path / "store.json"
    path.write_text("[1]")
    (tmp_path / "backups").mkdir()
    results = []
    with open(tmp_path / "backups" / "SHA256SUMS.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        worker = threading.Thread(target=lambda: results.append(resbak.backup_file(path)))
        worker.start()
        # The call cannot finish while this thread holds the folder's lock; this thread only
        # runs on because the waiting call released the GIL.
        worker.join(timeout=0.2)
        assert worker.is_alive() and results == []
        fcntl.flock(lock, fcntl.LOCK_UN)
    worker.join()
    assert results[0]["items"] == 1


def test_bad_arguments_raise_instead_of_being_misread(tmp_path):
    store = tmp_path / "data" / "experiences.json"
    store.parent.mkdir()
    resbak.write_with_backup(store, store_text(1))
    resbak.write_with_backup(store, store_text(2))
    copies = sorted((store.parent / "backups").iterdir())
    for keep in (0, -1):
        with pytest.raises(resbak.InvalidKeepError):
            resbak.write_with_backup(store, store_text(3), keep=keep)
    for keep in (True, 1.5, "3"):
        with pytest.raises(TypeError):
            resbak.write_with_backup(store, store_text(3), keep=keep)
    for data in (5, [1, 2], {"a": 1}):
        with pytest.raises(TypeError):
            resbak.write_with_backup(store, data)
    with pytest.raises(TypeError):
        resbak.backup_file(os.fsencode(str(store)))
    assert sorted((store.parent / "backups").iterdir()) == copies, "nothing was removed"
    assert json.loads(store.read_text())["experiences"] == [{"pnl": 0}, {"pnl": 1}]


def test_an_exclude_given_as_one_string_is_one_pattern(tmp_path):
    results = tmp_path / "results" / "s"
    results.mkdir(parents=True)
    (results / "trades.csv").write_text("pnl\n1\n")
    (results / "scratch.tmp").write_text("x")
    report = resbak.backup("s", exclude="*.tmp", results_dir=tmp_path / "results",
                           backup_dir=tmp_path / "backups")
    assert report[0]["status"] == "backed_up"
    assert report[0]["files"] == 1, report
