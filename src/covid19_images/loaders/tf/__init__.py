"""The TensorFlow room: everything of the loaders that imports TensorFlow.

* :mod:`.adapter`: the ``tf.data.Dataset`` ``load_*("tf")`` returns (native decoding routes);
* :mod:`.tasks`: masks, scores and boxes as ``tf.data`` targets;
* :mod:`.volumes`: CT volumes (``volumes=True``);
* :mod:`.streaming`: ``tf.data`` over exported TFRecord shards (``shards=``);
* :mod:`.augment`: the "light" preset with stateless ``tf.image`` / raw ops, seeded per item.

Each imports the framework-neutral part of :mod:`covid19_images.loaders`, never another room;
TensorFlow itself comes through :func:`covid19_images.loaders._frameworks.import_tensorflow`.
"""
