"""Data layer: datasets as uint8 CHW tensors, seeded splits and loaders, device-side augmentation."""

from supernet.data.augment import BatchAugment, normalize, random_crop_flip
from supernet.data.crops import CentreCrop, RandomResizedCrop, SampleKey
from supernet.data.datasets import DataSplits, dataset_names, load_dataset
from supernet.data.errors import DatasetError
from supernet.data.idx import read_idx, write_idx
from supernet.data.imagefolder import FolderOptions, ImageFolderDataset
from supernet.data.loaders import (
    SeededShuffleSampler,
    StepKeyedSampler,
    TensorBatchSampler,
    derive_seed,
    make_loader,
)
from supernet.data.memory import TensorImageDataset
from supernet.data.splits import HoldoutIndices, hold_out

__all__ = [
    "BatchAugment",
    "CentreCrop",
    "DataSplits",
    "DatasetError",
    "FolderOptions",
    "HoldoutIndices",
    "ImageFolderDataset",
    "RandomResizedCrop",
    "SampleKey",
    "SeededShuffleSampler",
    "StepKeyedSampler",
    "TensorBatchSampler",
    "TensorImageDataset",
    "dataset_names",
    "derive_seed",
    "hold_out",
    "load_dataset",
    "make_loader",
    "normalize",
    "random_crop_flip",
    "read_idx",
    "write_idx",
]
