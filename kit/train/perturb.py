"""Numerics-only perturbations: how to make an ensemble of healthy runs on any device.

A port is judged by how far its loss curve lies from a reference run's. How far is too far depends
on how far two *healthy* runs of the same setup lie from each other, and for a port the relevant
healthy runs differ from the reference only in arithmetic: same seed, same data order, same recipe,
other rounding. Training is chaotic, so differences in the last bit grow until the curves wander
apart by as much as any numerical difference would make them; runs with another seed differ by much
more (another initialisation, another data order) and would hide real bugs in their spread.

The ensemble-forecasting trick makes such runs anywhere, without a second device or thread count:
start from the recipe's initial weights multiplied element by element by ``1 + eps * N(0, 1)``, with
``eps`` tiny (the shipped ensembles use ``1e-4``: above float32's rounding, below bfloat16's) and the noise
drawn from its own generator seeded by ``numerics.seed``. Every other random draw of the run (data order,
augmentation, drop-path) is untouched, so the members differ from the reference only as a change of kernel
would make them differ::

    kit train --recipe workshop_hivit --set numerics.init_perturbation=1e-4 --set numerics.seed=3

The recipe's ``numerics`` section is off by default (``init_perturbation`` and ``grad_noise`` 0), and then
nothing here runs: a default run is bit for bit what it was before these switches existed. Weights that
start at exactly zero (biases) stay zero; the others carry the perturbation into the whole run.

``numerics.grad_noise`` is a teaching fault injection, not a tool: every gradient element is multiplied by
``1 + grad_noise * N(0, 1)`` at every step (from its own generator, seeded by ``numerics.seed``), which is
about what a healthy reduced-precision kernel does to a gradient (``1e-3``: float16's rounding is 5e-4,
bfloat16's 4e-3). Notebook 6 plants it as the change a verdict should *pass*. Its generator is not part of
a checkpoint, so a resumed run with gradient noise does not repeat an uninterrupted one.
"""

from __future__ import annotations

from typing import Mapping

import torch

from kit.core.errors import UserError


def _generator(seed: int) -> torch.Generator:
    """A CPU generator of its own: the run's global generators must draw exactly what they would draw unperturbed."""
    return torch.Generator().manual_seed(int(seed) % 2**63)


@torch.no_grad()
def perturb_weights(model: torch.nn.Module, eps: float, seed: int) -> None:
    """Multiply every parameter of ``model`` element-wise by ``1 + eps * N(0, 1)`` (noise drawn on the CPU
    from a generator seeded by ``seed``, so every process and every device draws the same perturbation)."""
    generator = _generator(seed)
    for param in model.parameters():
        noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
        param.mul_((1.0 + eps * noise).to(device=param.device, dtype=param.dtype))


def add_gradient_noise(model: torch.nn.Module, scale: float, seed: int) -> None:
    """From now on multiply each gradient of ``model`` element-wise by ``1 + scale * N(0, 1)`` (a hook per
    parameter; the noise is drawn on the CPU from a generator seeded by ``seed``)."""
    generator = _generator(seed + 1)  # not the same draws as the weight perturbation's

    def noisy(grad: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(grad.shape, generator=generator, dtype=torch.float32)
        return grad * (1.0 + scale * noise).to(device=grad.device, dtype=grad.dtype)

    for param in model.parameters():
        if param.requires_grad:
            param.register_hook(noisy)


def _amount(numerics: Mapping, key: str) -> float:
    value = float(numerics.get(key) or 0.0)
    if value < 0:
        raise UserError(f"numerics.{key} must be 0 (off) or a small positive number, not {value}")
    return value


def apply(model: torch.nn.Module, numerics: Mapping) -> None:
    """Apply the recipe's ``numerics`` section to a freshly built model (nothing when it is off)."""
    seed = int(numerics.get("seed") or 0)
    eps, grad_noise = _amount(numerics, "init_perturbation"), _amount(numerics, "grad_noise")
    if eps:
        perturb_weights(model, eps, seed)
    if grad_noise:
        add_gradient_noise(model, grad_noise, seed)
