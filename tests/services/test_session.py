"""The GUI's session state, without Qt or torch: open files (a reload replaces its entry and forgets the drift
checks of the old data), drift checks per file and the last verdict, and the result last shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from turbofan_desktop.services.session import DriftCheck, LoadedData, LoadRequest, Session, ShownResult


def _loaded(path: str) -> LoadedData:
    return LoadedData(LoadRequest(Path(path)), SimpleNamespace(name=path), data_hash=f"hash of {path}")


def test_files_keep_their_order_and_a_reload_replaces_its_entry_and_forgets_its_drift():
    session = Session()
    train, test = _loaded("train_FD001.txt"), _loaded("test_FD001.txt")
    assert session.add_file(train) == (0, False)
    assert session.add_file(test) == (1, False)
    check = DriftCheck(3, "telemanom s_2 v1", report=SimpleNamespace(drifted=["s_4"]))
    assert session.set_file_drift(1, [check]) and session.file_drift(1) == [check] and session.has_drift(1)
    assert not session.set_file_drift(5, [check])  # no such file: nothing kept

    again = _loaded("test_FD001.txt")
    assert session.add_file(again) == (1, True)
    assert session.files == [train, again] and session.file(1) is again
    assert session.file_drift(1) == [] and not session.has_drift(1)  # the checks were of the old data
    assert session.index_of(again.dataset) == 1 and session.index_of(test.dataset) is None


def test_a_finished_check_is_recorded_even_when_its_file_is_gone():
    session = Session()
    assert session.drift_checks is None and session.last_drift is None
    first = DriftCheck(3, "a", report=SimpleNamespace(drifted=[]))
    second = DriftCheck(4, "b", report=SimpleNamespace(drifted=["s_2"]))
    session.record_drift([first, second])
    assert session.drift_checks == [first, second] and session.last_drift == (3, first.report)
    session.record_drift([])
    assert session.drift_checks == [] and session.last_drift == (3, first.report)  # the last verdict stays


def test_the_shown_result_names_version_unit_and_data():
    session = Session()
    shown = ShownResult(7, 1, detection=None, dataset=None)
    session.last_shown = shown
    assert (session.last_shown.version_id, session.last_shown.unit) == (7, 1)


def test_importing_the_session_loads_neither_qt_nor_torch():
    code = (
        "import sys; import turbofan_desktop.services.session\n"
        "print(sorted(m for m in ('PySide6', 'pyqtgraph', 'superqt', 'torch') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
