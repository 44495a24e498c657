"""DHDE: Park, Tai, Cho and Kweon, "A Unified Approach of Multi-scale Deep and Hand-crafted
Features for Defocus Estimation", CVPR 2017.

Pipeline (paper Sec. 3-4; constants from the authors' release zzangjinsun/DHDE_CVPR17,
``ParameterSetting.m``, ``DHDE_train.prototxt``, ``DHDE_solver.prototxt``,
``DHDE_defocus_estimation.m``):

1. Canny edges of the HSV V channel at two threshold pairs: 15x15 patches on strong edges,
   27x27 on weak ones (:mod:`defocus.features.patches`).
2. Per patch the defocus feature ``f_B = [f_D, f_G, f_S, f_C]`` (Eq. 5): hand-crafted features
   (:mod:`defocus.features.handcrafted`) and a small CNN's 25-d deep feature ``f_C``.
3. A 300-150-11 classifier gives a label (sigma of Eq. 10) and its softmax probability.
4. The sparse sigma map is filtered by the probability-joint bilateral filter (Eq. 6) guided
   by a rolling-guidance-filtered image, propagated with the matting Laplacian (Eqs. 7-8),
   and (release only) smoothed by a joint weighted median filter.

``predict_raw`` returns the full sigma map in pixels; the base class min-max normalises it for
binary metrics, which equals sweeping the paper's threshold ``tau`` (Eq. 13) over the map.
The feature set is one parameter, ``features``: ``fD``, ``fG``, ``fS``, ``fH`` (= fD+fG+fS),
``fC``, ``fB`` (= fH+fC, the paper's method) or any ``+``-joined combination such as
``fD+fS+fC``; ``scales=single`` is the single-scale ablation of Sec. 3.6. An ablation is thus
``dhde@features=fC`` (Table 1).

Package layout: :mod:`~defocus.methods.dhde.net` (the network), :mod:`~.fast` (f_C shared over
the image at inference), :mod:`~.filter` (Eq. 6), :mod:`~.release` (the authors' Caffe model's
conversion; its download is the ``dhde`` entry of :mod:`defocus.releases`), :mod:`~.method`
(the method class), :mod:`~.table1` (the Table 1 experiment); the propagation of Eqs. 7-8 is
:mod:`defocus.methods.propagation`, shared with zhuo_sim and lbp.
"""

from defocus.methods.dhde.fast import _relu_pool3, deep_features_at
from defocus.methods.dhde.filter import JBF_IMPLS, prob_joint_bilateral
from defocus.methods.dhde.method import (
    DHDE,
    TOLERANCE,
    binary_mask,
    inv_lr,
    label_accuracy,
)
from defocus.methods.dhde.net import DEEP_DIM, DHDENet, parse_features
from defocus.methods.dhde.release import release_state_dict
from defocus.methods.dhde.table1 import PAPER_ACCURACY, RANDOM_GUESS, feature_table
from defocus.methods.propagation import LAP_SOLVERS, LAP_TOL, matting_propagation

__all__ = [
    "DEEP_DIM",
    "DHDE",
    "DHDENet",
    "JBF_IMPLS",
    "LAP_SOLVERS",
    "LAP_TOL",
    "PAPER_ACCURACY",
    "RANDOM_GUESS",
    "TOLERANCE",
    "_relu_pool3",
    "binary_mask",
    "deep_features_at",
    "feature_table",
    "inv_lr",
    "label_accuracy",
    "matting_propagation",
    "parse_features",
    "prob_joint_bilateral",
    "release_state_dict",
]
