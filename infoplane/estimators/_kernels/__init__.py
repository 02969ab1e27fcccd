"""The pure maths behind the estimator classes: vectorised kernels on checked arrays, in bits.

One module per family (``binning``, ``binning_torch``, ``kde``, ``knn``, ``gaussian``, ``decoder``,
``mixture``, ``probe``); ``rows`` holds the small tensor helpers the wide-layer estimators share. No
validation here: the classes check their inputs, then call these functions.
"""
