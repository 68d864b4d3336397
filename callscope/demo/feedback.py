"""Whether this build of callscope computes routing weights (the loop's feedback step).

The demo never writes a weights document itself: the pipeline's job does, into the
registry (``governance/<service>/weights``), and the consumers' balancers apply it. When
the installed ``pipeline`` offers no such job, the demo says so in its summary.
"""

from __future__ import annotations

__all__ = ["weight_job_status"]


def weight_job_status() -> str:
    try:
        import pipeline
    except ImportError:
        return "absent: the pipeline package is not installed"
    names = [n for n in getattr(pipeline, "__all__", ()) if "weight" in n.lower()]
    if not names:
        return ("absent: no pipeline job on this build computes governance/<service>/weights "
                "yet; traffic moves away from a slow instance by the consumers' adaptive "
                "balancer alone")  # fmt: skip
    return f"pipeline offers {', '.join(names)}, not yet run by the demo"
