"""The PyTorch room: everything of the loaders that imports torch.

* :mod:`.adapter`: ``CovidImageDataset``, the map-style dataset ``load_*("torch")`` returns;
* :mod:`.tasks`: task items with masks and boxes as torchvision ``tv_tensors``;
* :mod:`.volumes`: the CT volume dataset (``volumes=True``);
* :mod:`.streaming`: the ``IterableDataset`` over exported WebDataset shards (``shards=``);
* :mod:`.augment`: the "light" preset as torchvision transforms v2, seeded per item.

Each imports the framework-neutral part of :mod:`covid19_images.loaders`, never another
room. (This package's name does not shadow ``torch``: with absolute imports, ``import torch``
inside it is the real PyTorch; ``tests/loaders/torch`` holds its tests.)
"""
