"""Start or attach to Ray for a run; Ray is an optional extra (``pip install -e ".[ray]"``)."""

from __future__ import annotations

import logging
import os
from typing import Any, Final


class RayUnavailable(RuntimeError):
    """Ray cannot be used for this run (message is one line for the user)."""


# Read by Ray when it is imported: off, a node takes the loopback address instead of the
# machine's (``ray._private.services.get_node_ip_address``). A local instance has no other node.
LOOPBACK_ONLY_ENV: Final = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def import_ray(*, loopback: bool = False) -> Any:
    """Ray, imported; ``loopback``: a local instance bound to 127.0.0.1 (only before Ray's first import)."""
    if loopback:
        os.environ.setdefault(LOOPBACK_ONLY_ENV, "0")
    try:
        import ray
    except ImportError:
        raise RayUnavailable('--backend ray needs Ray: pip install -e ".[ray]"') from None
    return ray


def connect(address: str | None, *, workers: int) -> bool:
    """Attach to the cluster at ``address`` (``auto`` or HOST:PORT), or start a local one sized to
    this machine; True when this call started Ray (and so should shut it down)."""
    ray = import_ray(loopback=not address)
    started = False
    if not ray.is_initialized():
        options: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.WARNING,
            "configure_logging": True,
        }
        try:
            if address:
                ray.init(address=address, **options)
            else:
                # "local": a new instance, never one found through RAY_ADDRESS or an earlier `ray start`
                ray.init(address="local", num_cpus=os.cpu_count() or 1, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise RayUnavailable(f"cannot attach to {where}: {str(exc).splitlines()[0]}") from None
        started = True
    cpus = float(ray.cluster_resources().get("CPU", 0))
    if cpus < workers:
        if started:
            ray.shutdown()
        raise RayUnavailable(f"--workers {workers} needs {workers} CPUs in the Ray cluster, which has {cpus:g}")
    return started


def node_ip() -> str:
    """This node's address as the other nodes of the cluster reach it."""
    ip: str = import_ray().util.get_node_ip_address()
    return ip


def disconnect() -> None:
    ray = import_ray()
    if ray.is_initialized():
        ray.shutdown()
