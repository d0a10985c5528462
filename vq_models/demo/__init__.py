"""``vqedit demo``: the whole product end to end on footage it generates itself.

A newcomer's first command. It writes a synthetic shot, preps it, trains Stage I and Stage II at demo
sizes, proposes the artist prior, starts a real render server, drives the headless host node through it
with a keyframed edit program, and writes the composites, the RGBA pass, a before/after movie, a contact
sheet and a metrics JSON. Each step logs to ``OUT/logs/STEP.log``; a failing step says which one, why and
where its log is.

Modules: :mod:`.config` (demo presets), :mod:`.steps` (step runner: timing, logs, failures),
:mod:`.program` (the demo's edit program), :mod:`.server` (the render server subprocess), :mod:`.outputs`
(movie and contact sheet), :mod:`.real_clip` (``--clip``: the same on real footage), :mod:`.pipeline`
(:func:`run_demo`); the metrics come from :mod:`vq_models.evaluation`.
"""

from __future__ import annotations

from vq_models.demo.config import DEMO_PRESETS, DemoConfig
from vq_models.demo.steps import DemoStepFailed

__all__ = ["DEMO_PRESETS", "DemoConfig", "DemoStepFailed", "run_demo"]


def run_demo(*args, **kwargs):  # noqa: ANN002, ANN003 - thin re-export, heavy imports stay lazy
    """See :func:`vq_models.demo.pipeline.run_demo`."""
    from vq_models.demo.pipeline import run_demo as _run

    return _run(*args, **kwargs)
