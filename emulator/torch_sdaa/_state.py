"""The loaded C++ card and the settings it was started with (import order: this first, then the API)."""

from torch_sdaa import _build, _guard, config

_guard.refuse_real_plugin()
settings = config.read()
C = _build.load()
C.set_card_count(len(settings.visible))
C.set_lacking(list(settings.lacking), settings.autofallback)
