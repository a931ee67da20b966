"""torch_sdaa.utils: ``from torch_sdaa.utils import cuda_migrate`` runs CUDA-written code on the card."""
