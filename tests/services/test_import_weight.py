"""The services layer is what the window imports before its first paint: it must stay light."""

from __future__ import annotations

import subprocess
import sys


def test_importing_services_loads_neither_pandas_nor_torch_nor_qt():
    code = (
        "import sys, turbofan_desktop.services, turbofan_desktop.services.models, turbofan_desktop.registry; "
        "print(' '.join(m for m in ('pandas', 'torch', 'PySide6') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == ""


def test_the_data_package_still_offers_its_names_on_first_use():
    import turbofan_desktop.data as data

    assert data.Dataset.__name__ == "Dataset"
    assert data.DataLineage is data.dataset.DataLineage
    assert "read_dataset" in dir(data)
