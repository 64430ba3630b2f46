"""The fastai room: everything of the loaders that imports fastai.

* :mod:`.adapter`: the ``DataLoaders`` ``load_*("fastai")`` returns;
* :mod:`.tasks`: the DataBlock blocks of the annotation tasks;
* :mod:`.volumes`: CT volume ``DataLoaders`` (``volumes=True``), over torch's volume dataset;
* :mod:`.augment`: fastai's ``aug_transforms`` run per item under a per-item seed.

fastai is built on torch, so this room may import :mod:`covid19_images.loaders.torch` (its
volumes do); nothing imports this room but the adapter registry, by name.
"""
