"""Elements served only while the manifest is the one a TensorFlow loader was built from.

Both TensorFlow routes (the classification adapter and the task datasets) end with this, after
their decode and batching, so that a sync rewriting the manifest mid-epoch stops the next element.
"""

from __future__ import annotations

from typing import Any


def served_while_unchanged(tf: Any, dataset: Any, stamp: Any, prefetch: bool) -> Any:
    """``dataset`` whose elements pass only while the manifest is the one the loader was built from.

    The native routes read the files inside TensorFlow, so the stamp check (one ``stat``,
    :meth:`ManifestStamp.check`, raising ``ManifestChanged``) is part of the graph. It runs
    once per served element - per batch when the loader batches - in a sequential map after
    the decode: every file of the element has been read by then, so an element is refused if a
    sync finished before or while its files were read (a check before each read missed a sync
    that finished between the check and the read). Per batch rather than per item because
    the ``tf.numpy_function`` call, not the ``stat``, is what costs (0.4-2 ms per item on
    two busy cores, see docs/benchmarks.md).

    ``stamp`` None (a loader serving its pixel cache) checks nothing. ``prefetch`` False leaves
    no buffer after the check, so an element is checked when it is asked for.
    """

    def check() -> bool:
        stamp.check()
        return True

    def checked(*element: Any) -> Any:
        done = tf.numpy_function(check, [], tf.bool, stateful=True)
        with tf.control_dependencies([done]):
            return tf.nest.map_structure(tf.identity, element)  # a detection target is a dict

    if stamp is not None:
        dataset = dataset.map(checked)
    if prefetch:
        return dataset.prefetch(tf.data.AUTOTUNE)
    unbuffered = tf.data.Options()  # no buffer after the check at all: tf.data would otherwise inject a prefetch
    unbuffered.experimental_optimization.inject_prefetch = False
    return dataset.with_options(unbuffered)
