"""Hand-crafted defocus features and multi-scale edge patches (Park et al. CVPR'17, DHDE).

:mod:`defocus.features.handcrafted` holds the batched DCT / gradient / SVD features and the
scale encoding; :mod:`defocus.features.patches` the edge-patch sampler and the HDF5 patch file.
"""

from defocus.features.handcrafted import (
    FEATURE_DIM,
    dct_features,
    encode_scale,
    gradient_features,
    gradient_magnitude,
    handcrafted_features,
    svd_features,
    value_channel,
)

__all__ = [
    "FEATURE_DIM",
    "dct_features",
    "encode_scale",
    "gradient_features",
    "gradient_magnitude",
    "handcrafted_features",
    "svd_features",
    "value_channel",
]
