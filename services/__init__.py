"""Product code of the EspoCRM <-> Advoware Beteiligte sync. No Motia import lives here."""

import os
import sys

# Every Motia event is a fresh Python process, so start-up cost is paid per event:
# - pydantic scans every installed distribution's entry points for plugins on its first model
#   (~50 ms per process with the dev tools installed); the service uses no pydantic plugin.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
# - `import httpx` also imports its command-line client (click, ~20 ms) unless that import
#   fails; the service never runs the httpx CLI (httpx then installs a stub `httpx.main`).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
