"""The pure maths behind the estimator classes: vectorised kernels on checked arrays, in bits.

One module per family (``binning``, ``binning_torch``, ``kde``, ``knn`` with its helpers ``knn_space``,
``knn_numba`` / ``knn_jit`` (numba, optional) and ``knn_tree``, ``gaussian``, ``decoder``, ``mixture``,
``probe``); ``rows`` holds the small tensor helpers the wide-layer estimators share. No
validation here: the classes check their inputs, then call these functions.
"""
