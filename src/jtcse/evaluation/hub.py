"""Can the Hugging Face hub be reached? Asked once per command, before any model or task data is fetched.

Unasked, every mteb task whose data is not cached spends ~23 s in huggingface_hub's retries (five, 1 + 2 +
4 + 8 + 8 s) and prints a ``Retrying in Ns`` line for each: offline, the zero-shot suite took some 45
minutes to fail. One short probe decides instead. When the hub cannot be reached, the libraries are put in
their offline mode (:func:`go_offline`): a task whose data is in the cache still runs, any other fails at
once with one line. An offline setting the user made (``HF_HUB_OFFLINE``, ``HF_DATASETS_OFFLINE``,
``TRANSFORMERS_OFFLINE``) is honoured without a probe.

The probe goes where huggingface_hub goes: ``HF_ENDPOINT`` (default ``https://huggingface.co``), through the
proxies of the environment. Any HTTP answer, even an error status, means reachable.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

from jtcse.errors import first_line

OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
ENDPOINT_ENV = "HF_ENDPOINT"  # huggingface_hub's own setting
DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0
_TRUE = {"1", "ON", "YES", "TRUE"}  # what huggingface_hub and datasets read as true


def offline_setting() -> str | None:
    """The name of the offline variable the user set to true, if any."""
    for name in OFFLINE_ENV:
        if os.environ.get(name, "").upper() in _TRUE:
            return name
    return None


def endpoint() -> str:
    return os.environ.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT


def probe(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when ``url`` answers HTTP within ``timeout`` seconds; else why not, in one line."""
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # it answered
    except urllib.error.URLError as exc:
        reason = exc.reason
        return first_line(reason) if isinstance(reason, BaseException) else str(reason)
    except (OSError, ValueError) as exc:  # a timeout while reading, a malformed HF_ENDPOINT
        return first_line(exc)


def hub_unavailable(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None when data may be fetched from the hub; else why not (an offline setting, or the probe's
    failure), as a phrase for a one-line notice."""
    setting = offline_setting()
    if setting is not None:
        return f"{setting} is set"
    url = endpoint()
    reason = probe(url, timeout)
    return None if reason is None else f"the Hugging Face hub ({url}) cannot be reached: {reason}"


def go_offline() -> None:
    """Put huggingface_hub, datasets and transformers in offline mode: cached files only, no retries.

    The libraries read the variables when imported; for one that is already imported, its module constant is
    set as well (the same flag the variable would have set)."""
    for name in OFFLINE_ENV:
        os.environ[name] = "1"
    # (module, constants): read by huggingface_hub's is_offline_mode() and by datasets' loaders
    flags = {"huggingface_hub.constants": ("HF_HUB_OFFLINE",), "datasets.config": OFFLINE_ENV[:2]}
    for module_name, constants in flags.items():
        module = sys.modules.get(module_name)
        for constant in constants if module is not None else ():
            setattr(module, constant, True)


def settle_offline(*, announce: str | None) -> str | None:
    """Ask once (before any model or task data is loaded) and, when the hub cannot be reached, go offline;
    returns the reason, None when online. ``announce``: the prefix of a one-line notice on stderr when the
    probe found the hub unreachable (None: no notice; an offline setting the user made gets none either)."""
    user_setting = offline_setting()
    reason = hub_unavailable()
    if reason is None:
        return None
    go_offline()
    if announce is not None and user_setting is None:
        print(f"{announce}: {reason}; tasks whose data is not cached fail at once", file=sys.stderr)
    return reason
