"""Where models run: CUDA when present, else CPU; AURALIGN_DEVICE overrides (e.g. "cpu", "cuda:1").
bf16 on CUDA (when the GPU supports it), float32 on CPU."""

from __future__ import annotations

import os

import torch


def select_device(override: str | None = None) -> torch.device:
    name = override or os.environ.get("AURALIGN_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"AURALIGN_DEVICE={name} but CUDA is not available on this machine")
    return device


def select_dtype(device: torch.device) -> torch.dtype:
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32
