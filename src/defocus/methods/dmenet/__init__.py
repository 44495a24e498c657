"""DMENet (Lee et al. CVPR'19); the implementation is :mod:`defocus.methods.dmenet.method`."""

from defocus.methods.dmenet.method import *  # noqa: F403
from defocus.methods.dmenet.method import _load_role, _pad_same, _read  # noqa: F401
