"""Images in the ImageNet layout: folders, transforms, samplers, loaders.

    loaders.py      Datasets and loaders for the trainer: ImageNet-style folders, seeded augmentation, sharded sampling
    transforms.py   The recipe's augmentation: timm's ``create_transform``
"""

from kit.core.lazy import lazy_exports

_EXPORTS = {
    # loaders
    "SampleError": "loaders",
    "UnreadableImage": "loaders",
    "TransformFailed": "loaders",
    "Split": "loaders",
    "find_split": "loaders",
    "DecodedCache": "loaders",
    "ImageSamples": "loaders",
    "failing_transform": "loaders",
    "collate": "loaders",
    "NormalizingCollate": "loaders",
    "samples_and_collate": "loaders",
    "EpochSampler": "loaders",
    "ShardSampler": "loaders",
    "Loaders": "loaders",
    "build_loaders": "loaders",
    "clean_errors": "loaders",
    # transforms
    "posterize_at_least_one_bit": "transforms",
    "augment_ops": "transforms",
    "keep_posterize_in_range": "transforms",
    "build_transform": "transforms",
    "split_normalize": "transforms",
    "normalize_batch": "transforms",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
