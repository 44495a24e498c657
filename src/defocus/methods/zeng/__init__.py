"""Zeng et al. TIP'19: a local sharpness metric learned from ConvNet kernels (``zeng``).

K. Zeng, Y. Wang, J. Mao, J. Liu, W. Peng, N. Chen, "A local metric for defocus blur
detection based on CNN feature learning", IEEE Transactions on Image Processing 28(5),
2019, pp. 2107-2115.

No code was published and the full text is not available to this project; what follows
relies on the abstract and on S.-H. Tsang's review (``shared/papers/
zeng2019_local_metric_review.txt``, cited below as "review Sec. n"). Every value the review
does not give is marked **own choice** with its reason.

Pipeline
--------
1. **Patches** (review Sec. 2). SLIC superpixels (Achanta et al. TPAMI 2012, the review's
   ref. [27]) are computed on every training image; an ``s x s`` grey patch is cut at each
   superpixel's centroid and labelled *blurred* when the blurred share of the patch in the
   binary ground truth is at least ``label_threshold``, *sharp* when the sharp share is, and
   dropped otherwise. Patches are computed once per ``fit`` and kept in memory (uint8).
2. **ConvNet** (review Sec. 3). A VGG-like net of alternating multi-convolution and
   sub-sampling (max-pool) stages with batch normalisation and CReLU activations
   (``concat(relu(x), relu(-x))``, Shang et al. ICML 2016), a fully connected layer and a
   2-class logistic (softmax) output trained with cross-entropy. The input is the grey
   patch (BT.601 luminance in [0, 1]) normalised by a batch-normalisation layer (review:
   "a batch normalization algorithm is used to normalize the input data"); the first
   convolution has ``kernels`` filters of 7 x 7 (review Sec. 4).
3. **Local metric by PCA** (review Sec. 4). The N first-layer kernels are reshaped to
   49-vectors (the 49 x N matrix of the review) and a PCA (mean-centred, as
   ``sklearn.decomposition.PCA``, whose ``explained_variance_ratio_`` the review quotes)
   keeps K = 2 components, reshaped to 7 x 7 kernels K1, K2. The kernels are computed
   at :meth:`Zeng.load` time from the first-layer weights of the checkpoint (nothing
   else is stored). How the paper combines the responses L1, L2 is not in the review;
   here (**own choice**) the metric is the local energy of the image in the subspace the
   two components span::

       L = sqrt( box_w( (I * Q1)^2 + (I * Q2)^2 ) )

   where ``Q1, Q2`` is an orthonormal basis of ``span(K1, K2)`` with its DC (mean)
   removed (``zero_mean``: a sharpness metric must not respond to flat brightness; the
   kernels' DC is irrelevant to the net after its input normalisation, so it is mostly
   left from random initialisation), ``*`` is correlation (``cv2.filter2D``) and
   ``box_w`` a ``metric_window`` mean. The energy is invariant to the arbitrary signs
   of the principal components and to rotations within their span.
4. **Iterative refinement with tanh** (review Sec. 5). ``B0 = clip(L / P_q(L), 0, 1)``
   (``P_q`` the ``norm_percentile``-th percentile; a robust max, **own choice**). With
   the global threshold ``T = threshold_scale * mean(B0)`` (**own choice**: the review only
   says "global threshold") and ``m_t`` the ``refine_window`` neighbourhood mean of
   ``B_{t-1}``::

       B_t = 0                            where m_t <  T   (blurred)
       B_t = tanh(g B_{t-1}) / tanh(g)    where m_t >= T   (sharp)

   for t = 1..N, N = 100. The tanh update is scaled by ``tanh(g)`` (**own choice**) so
   that it maps [0, 1] onto [0, 1] and raises every value in (0, 1), as the review says
   the update "enhances the response of the unblurred region"; ``g = gain = 1`` is the
   plain tanh. The results at N1 = 10, N2 = 50, N3 = 100 are combined with weights 0.3,
   0.2, 0.5 (review Sec. 5): ``S = 0.3 B_10 + 0.2 B_50 + 0.5 B_100`` in [0, 1].
5. The blur map is the complement of the sharpness map, ``1 - S`` (1 = blurred).

Prediction needs only the two 7 x 7 kernels and box filters: it runs with OpenCV on the
CPU whatever ``device`` is (``device`` is used by :meth:`Zeng.fit`).

Package layout: :mod:`~defocus.methods.zeng.patches` (step 1: labelled patches at
superpixel centroids), :mod:`~.net` (step 2: the ConvNet), :mod:`~.metric` (steps 3 and 4:
PCA kernels, local metric, tanh refinement) and :mod:`~.method` (the method class
:class:`Zeng`). Every name is importable from this package.
"""

from defocus.methods.zeng.method import Zeng
from defocus.methods.zeng.metric import (
    local_metric,
    metric_kernels,
    normalise_metric,
    pca_kernels,
    refine,
)
from defocus.methods.zeng.net import FIRST_LAYER, CReLU, ZengNet, classify, patches_to_tensor
from defocus.methods.zeng.patches import BLURRED, SHARP, manifest_patches, superpixel_patches

__all__ = [
    "BLURRED",
    "FIRST_LAYER",
    "SHARP",
    "CReLU",
    "Zeng",
    "ZengNet",
    "classify",
    "local_metric",
    "manifest_patches",
    "metric_kernels",
    "normalise_metric",
    "patches_to_tensor",
    "pca_kernels",
    "refine",
    "superpixel_patches",
]
