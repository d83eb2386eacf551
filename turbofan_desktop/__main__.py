"""``python -m turbofan_desktop`` runs the same front end as the ``turbofan-desktop`` command."""

import multiprocessing
import sys

from turbofan_desktop.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
