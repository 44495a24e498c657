"""Binary blur-detection metrics as an accumulator (PySODMetrics style).

The declared default protocol (:data:`PROTOCOL_TEXT`, quoted in every table caption):

* the scored map is ``maps/{id}`` of the prediction file (float32 in [0, 1], 1 = blurred);
* the GT mask is binarised at 0.5 of its value range after polarity normalisation
  (1 = blurred);
* for thresholds ``t_k = k/255``, ``k = 0..255``, the binary prediction is ``map >= t_k``;
  per image ``P = TP/(TP+FP)`` and ``R = TP/(TP+FN)``, with 0/0 counted as 0;
* P and R are averaged over images and ``F_k = (1+beta2) P R / (beta2 P + R)`` (0 where
  both are 0), ``beta2 = 0.3`` (Achanta et al., CVPR 2009; the value used by DeFusionNet,
  Tang et al. CVPR 2019, and the SOD literature);
* ``f_beta`` = max_k F_k; ``f_beta_mean`` = mean_k F_k; ``f_beta_adaptive``: the mean over
  images of the per-image F of the positive class after the adaptive binarisation below;
  ``mae`` = mean over images of per-image mean ``|map - GT|``;
* a map that is constant over an image (max - min <= 1e-6) carries no evidence: every
  threshold labels all of its pixels alike. The per-image column ``no_evidence`` flags it.

Adaptive threshold
------------------
Achanta et al. (CVPR 2009, Sec. 4) binarise a saliency map S at ``T = 2 mean(S)``; the SOD
toolkits clip it at 1 (``min(2 mean(S), 1)``, PySODMetrics ``Fmeasure``). Their maps are
bright on a small foreground. DBD benchmarks reuse that code on maps whose bright class is
the in-focus object (DUT-DBD marks it white, Zhao et al. CVPR 2018; the BTBNet and
DeFusionNet comparisons score with the SOD measures). Applied to a blur map instead, whose
bright class (blurred) covers most of a CUHK image, ``2 mean(map)`` exceeds 1 and only
pixels at exactly 1 survive: F ~ 0 for any method. So the threshold here is always taken on
the saliency-style map, the in-focus map ``s = 1 - map``: a pixel is predicted in focus when
``s > t``, ``t = min(adaptive_factor * mean(s), 1)``, and blurred otherwise, i.e. blurred
when ``map >= 1 - t`` (ties go to the blurred class, as ``map >= t_k`` in the sweep, so a
constant map keeps its own label: the all-blurred map stays all blurred). That one
binarisation serves either positive class: with ``positive = sharp`` it is Achanta's rule
on the positive class's own map, with ``positive = blurred`` the blurred class is its
complement. ``threshold_adaptive`` in the per-image CSV is ``t`` on the in-focus map.

Named options: averaging ``image`` (default, as above), ``image_maxf`` (mean of per-image
max-F), ``pooled`` (TP/FP/FN pooled over the dataset); positive class ``blurred``
(default) or ``sharp`` (then ``map -> 1 - map`` and ``GT -> 1 - GT``); the number of
thresholds (256 by default; ``n`` gives ``t_k = k/(n-1)``); fixed-threshold pixel accuracy
and IoU (threshold 0.5 by default).

The threshold sweep itself (float32 thresholds, quantisation, edge cases) is described in
:mod:`defocus.evaluate.metrics.curves`.

Package layout: :mod:`~defocus.evaluate.metrics.evaluator` (:class:`BinaryEvaluator`, the
per-image accumulator), :mod:`~.curves` (threshold table, quantisation, counts at every
threshold and the P/R/F curves, max-F and average precision computed from them, counts at
absolute thresholds), :mod:`~.maps` (rules on one map or one GT mask: GT binarisation, the
no-evidence test, MATLAB's ``mat2gray``, Park et al.'s Eq. 13) and :mod:`~.protocol_text`
(a protocol in words, for captions). Every name is importable from this package.

References
----------
Achanta, Hemami, Estrada, Suesstrunk, "Frequency-tuned salient region detection",
CVPR 2009 (beta2 = 0.3, adaptive threshold 2 x mean saliency).
Zhao, Zhao, Wang, Lu, "Defocus blur detection via multi-stream bottom-top-bottom fully
convolutional network", CVPR 2018 (DUT-DBD, in-focus = white; SOD measures).
Tang, Zhu, Liu, Wang, "DeFusionNET: Defocus blur detection via recurrently fusing and
refining multi-scale deep features", CVPR 2019 (F-measure and MAE on CUHK and DUT).
"""

from defocus.evaluate.metrics.curves import (
    AVERAGING,
    BETA2,
    Counts,
    average_precision,
    f_beta,
    f_measure,
    quantise,
    sigma_levels,
    summarise,
    threshold_counts,
    thresholds,
)
from defocus.evaluate.metrics.curves import _check_mode as _check_mode  # used by bootstrap
from defocus.evaluate.metrics.curves import _div as _div  # used by bootstrap
from defocus.evaluate.metrics.evaluator import POSITIVE, BinaryEvaluator
from defocus.evaluate.metrics.maps import (
    CONSTANT_TOL,
    EQ13_ALPHA,
    GT_BINARISE,
    binarise_gt,
    eq13_accuracy,
    eq13_threshold,
    is_constant,
    mat2gray,
)
from defocus.evaluate.metrics.protocol_text import PROTOCOL_TEXT, describe_protocol

__all__ = [
    "AVERAGING",
    "BETA2",
    "CONSTANT_TOL",
    "EQ13_ALPHA",
    "GT_BINARISE",
    "POSITIVE",
    "PROTOCOL_TEXT",
    "BinaryEvaluator",
    "Counts",
    "average_precision",
    "binarise_gt",
    "describe_protocol",
    "eq13_accuracy",
    "eq13_threshold",
    "f_beta",
    "f_measure",
    "is_constant",
    "mat2gray",
    "quantise",
    "sigma_levels",
    "summarise",
    "threshold_counts",
    "thresholds",
]
