"""UCF101-style videos -> per-frame torchvision ResNet features -> the feature store.

This package depends on PyTorch, torchvision, OpenCV and NumPy, never on TensorFlow or
Nengo, so it can run alone on a GPU machine. Importing it is cheap: PyTorch is imported
only by the modules that need it (:mod:`.backbones`, :mod:`.extract`).

Modules
-------
paths         store and data folders of a config (no PyTorch)
ucf101        split files, class index, clip lists, groups, the leak check
frames        OpenCV decoding, JPEG frame folders, sampling policies, resizing
backbones     ResNet-18..152 frame encoders, local weights, the seed's encoder head
extract       the resumable, shardable pipeline and the store assembly
synthetic     the embedded synthetic action set (XVID videos in the UCF101 layout)
seed_pickles  export to (and, when allowed, import from) the seed's four pickles
"""

from nengo_actions.config.paths import store_dir

__all__ = ["store_dir"]
