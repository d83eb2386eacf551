"""The plugin API: hook specifications, the ``hookimpl`` marker and the model contract."""

import pluggy

from turbofan_desktop.plugins.hookspecs import PROJECT_NAME

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["hookimpl", "PROJECT_NAME"]
