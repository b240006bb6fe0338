"""autoprov plugin for the Yealink SIP-T4x desk phones: the T4xS generation (T41S/T42S/T46S/T48S) and the
T4xG generation before it (T41P/T42G/T46G/T48G), whose common file and firmware names differ.

One entry point (``yealink_t4x``) builds all eight models, so they share one ``[plugins.yealink_t4x]``
section (:class:`autoprov_yealink_t4x.settings.YealinkSettings`). Facts and sources: docs/vendors/yealink.md.
"""

from __future__ import annotations

from typing import Any

from autoprov import hookimpl
from autoprov.config import Settings
from autoprov_yealink_t4x.model import Spec, YealinkModel
from autoprov_yealink_t4x.settings import YealinkSettings

# The T4xS phones run one firmware image since release 84 ("T46S(T48S,T42S,T41S)-66.84.0.90.rom"), and one
# per model before it ("T41S-68.81.0.110.rom"): both are accepted, from one shared directory.
T4XS = "yealink_t4xs"
SPECS = (
    Spec("yealink_t41s", "T41S", 6, 68, ("T41S",), (68, 66), T4XS),
    Spec("yealink_t42s", "T42S", 12, 67, ("T42S",), (67, 66), T4XS),
    Spec("yealink_t46s", "T46S", 16, 66, ("T46S",), (66,), T4XS),
    Spec("yealink_t48s", "T48S", 16, 65, ("T48S",), (65, 66), T4XS),
    Spec("yealink_t41p", "T41P", 6, 36, ("T41", "T41P"), (36,)),
    Spec("yealink_t42g", "T42G", 12, 29, ("T42", "T42G"), (29,)),
    Spec("yealink_t46g", "T46G", 16, 28, ("T46", "T46G"), (28,)),
    Spec("yealink_t48g", "T48G", 16, 35, ("T48", "T48G"), (35,)),
)


class YealinkPlugin:
    @hookimpl
    def autoprov_device_models(self, settings: Settings, plugin_settings: Any) -> list[YealinkModel]:
        return [YealinkModel(settings, plugin_settings, spec) for spec in SPECS]

    @hookimpl
    def autoprov_plugin_settings(self) -> type:
        return YealinkSettings


plugin = YealinkPlugin()
