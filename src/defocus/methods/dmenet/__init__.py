"""DMENet: deep defocus map estimation using domain adaptation (Lee, Lee, Cho & Lee, CVPR 2019).

A PyTorch re-implementation of the authors' TensorFlow 1 / TensorLayer release
(github.com/codeslake/DMENet, ``model.py``, ``main.py``, ``config.py``, ``utils.py``; cited
below as "release"). Nothing is copied; every architectural and training fact is cited to the
file it comes from. The paper's own statements are cited as "paper" (Sec. 4-5).

Subnetworks (paper Sec. 4; release ``model.py``)
-------------------------------------------------------
* **B, blur estimation** (:class:`BlurNet`): a U-Net whose encoder is VGG19 conv1_1 .. conv5_4
  (ImageNet weights) with skips from conv1_2, conv2_2, conv3_4, conv4_4 and conv5_4
  (``VGG19_down``: ``d0 .. d4``). Decoder (``UNet_up``) per level: nearest x2 upsampling, concat
  with the skip, then 3 x (conv 3x3 + BN + LeakyReLU 0.2) of 256 / 128 / 64 channels; the last
  (full-resolution) level has a single 64-channel conv; its output is the feature the
  discriminator sees (``gan_feat``). Then 7 residual blocks (two 3x3-64 conv+BN+LReLU; the
  shortcut is a 1x1-64 conv+BN+LReLU) and a head 3x3-64, 3x3-32 (conv+BN+LReLU) and 3x3-1,
  sigmoid. Five auxiliary heads (``u4_aux .. u0_aux``) at 1/16 .. 1/1 of the input: conv 3x3
  (256 / 128 / 64 / 32 / 32) + BN + LReLU, conv 3x3 to 1 + BN + sigmoid.
* **D, domain adaptation** (:class:`Discriminator`, ``feature_discriminator``): on the 64-channel
  ``gan_feat``: 5 x conv 4x4 stride 2 ('SAME' padding, no bias) of 64 / 128 / 256 / 512 / 1
  channels, BN + LReLU 0.2 after the first four; a map of logits.
* **C, content preservation** (:class:`ContentNet`): a second, frozen VGG19; MSE between its
  conv4_4 features (paper: "l = 4", release ``perceptual_synthetic_out = d3``) of the predicted
  map and of the GT map, each replicated to 3 channels.
* **S, sharpness calibration** (:class:`CalibrationNet`, ``Binary_Net``): 1x1 convs 3 x 64,
  3 x 32, 3 x 16 (each + BN + LReLU 0.2) and a 1x1 conv to one logit, applied to B's
  predicted map of a real image with a binary blur mask; sigmoid cross-entropy.

Losses and updates (release ``main.py``; paper Sec. 4)
-------------------------------------------------------
``L_g = L_B + lambda_aux sum_k L_aux,k + lambda_C L_C + lambda_S L_S + lambda_adv L_adv`` trains
B and S; ``L_d`` trains D; each iteration runs one D update, then one B/S update on the same
batch (release: ``sess.run(optim_d)`` then ``sess.run(optim_main)``). With ``r`` the real
batches (the unlabelled ``real`` images and the ``binary``-labelled ones; release feeds both,
"Flickr" and "CUHK", to D):

* ``L_B``: MSE of B's map against the normalised GT defocus map of a synthetic image;
* ``L_aux,k``: MSE of aux head k against the GT nearest-downsampled (TF ``align_corners``) to
  its size;
* ``L_adv = mean_r BCE(D(f_r), 1)``; ``L_d = lambda_adv (BCE(D(f_syn), 1) + mean_r BCE(D(f_r), 0))``
  (release: ``(2 L_syn + L_real + L_real_no_label) / 2 * lambda_adv``; z = 1 for synthetic);
* ``L_C``: MSE on VGG19 conv4_4; ``L_S``: BCE of S's logits against the binary mask.

GT normalisation (parameter ``target``): ``"sigma"`` trains on ``sigma / sigma_max`` (release
``utils.get_images`` mode 'DEPTH', the variant for the new SYNDOF generator). Our SYNDOF
renderer writes sigma = (CoC - 1) / 4 px with max CoC 29 px, so ``sigma_max = (29 - 1) / 4 =
7`` (release README / ``utils.py``: "sigma = (max_coc-1)/4, when max_coc = 29, max_sigma =
7"). ``"coc"`` trains on ``CoC / max_coc`` with ``max_coc = 15``, as the release does with its
own released SYNDOF (``utils.py`` lines 38-43, ``config.TRAIN.max_coc``; the manifest's ``coc``
column, see :mod:`defocus.datasets.dmenet_release`), and is what the authors' checkpoint
outputs. :meth:`DMENet.predict_raw` returns sigma in px: ``map * sigma_max`` for ``"sigma"``;
``max(0, (max_coc * map - 1) / 2)`` for ``"coc"`` (release ``main.py`` lines
500-501, ``evaluation/RTF/quantitative_RTF.m`` lines 47-48).

Ablations (paper Sec. 5.1, the figure of incremental subnetworks) are parameters of this one
implementation: ``dmenet@subnets=B`` (DMENet_B), ``dmenet@subnets=BD``,
``dmenet@subnets=BDC``, ``dmenet`` (DMENet_BDCS) and ``dmenet@aux=false`` (BDCS without the
auxiliary loss).

The authors' release as data (:mod:`defocus.methods.dmenet.release`): their trained checkpoint
``DMENet_BDCS.npz`` converted by variable name (``dmenet@weights=release``, or ``defocus
predict --method dmenet --checkpoint DMENet_BDCS.npz``), their Caffe ``vgg19.npy`` as the
encoder and content-network weights (``vgg_weights``), and their training and test data
(:mod:`defocus.datasets.dmenet_release`, ``target="coc"``).

Deliberate differences from the release, each a consequence of the PyTorch port:

* the VGG19 weights are torchvision's by default (RGB in [0, 1], ``vgg_normalise``); the
  release uses the Caffe VGG19 (``vgg19.npy``: BGR in [0, 255] minus ``[103.939, 116.779,
  123.68]``, release ``model.py`` ``VGG19_down``), which ``vgg_weights`` = a ``vgg19.npy``
  path (or ``release`` in the workflow) loads. Each input convention belongs to its weights:
  ``vgg_input="caffe"`` feeds the release's (:func:`caffe_normalise`), which the authors'
  checkpoint and their VGG19 need.
* release batch norms have no scale (``gamma_init=None`` in ``UNet_up``,
  ``feature_discriminator`` and ``Binary_Net``: TensorLayer 1.11 then creates no ``gamma``);
  here the scale exists but is held at 1 and not trained (``bn_scale=False``, the default;
  ``True`` trains it). A converted release checkpoint sets it to 1.
* ``augment`` scales a synthetic image's sigma label with the image when it resizes it (the
  release resizes the label map without rescaling its values, ``utils.py``
  ``crop_pair_with_different_shape_images``; a sigma in pixels must follow the pixel grid).
* batches are drawn at random per iteration (resumable, ``batch_rng``) instead of per-epoch
  shuffled passes; the release's optional pre-training (``--is_pretrain``) and Gaussian-noise
  augmentation (``--is_noise``, off by default) are not implemented.

Package layout: :mod:`~defocus.methods.dmenet.layers` (conv/BN blocks, TF resize and padding, the
VGG19 encoder and its input conventions), :mod:`~.net` (B, D, C, S, the B + S model and
their widths), :mod:`~.trainer` (losses and the alternating D / G update), :mod:`~.data` (training
rows, reading and augmentation), :mod:`~.method` (the method class: parameters, fitting,
checkpoints, inference), :mod:`~.release` (the authors' TensorLayer checkpoint and Caffe VGG19
converted by variable name; their download is the ``dmenet`` / ``vgg19`` entries of
:mod:`defocus.releases`).
"""

from defocus.methods.dmenet.data import augment
from defocus.methods.dmenet.layers import (
    CAFFE_MEAN_BGR,
    LRELU,
    STRIDE,
    VGG_INPUTS,
    AuxHead,
    ResBlock,
    caffe_normalise,
    conv_bn,
    resize_nearest_tf,
)
from defocus.methods.dmenet.method import ARCH_KEYS, TARGETS, DMENet
from defocus.methods.dmenet.net import (
    AUX,
    CALIB,
    CALIB_REPEAT,
    DECODER,
    DECODER_CONVS,
    DISC,
    FULLRES,
    HEAD,
    N_RES,
    SKIPS,
    BlurNet,
    CalibrationNet,
    ContentNet,
    Discriminator,
    DMENetModel,
)
from defocus.methods.dmenet.trainer import SUBNETS, Trainer

__all__ = [
    "ARCH_KEYS",
    "AUX",
    "CAFFE_MEAN_BGR",
    "CALIB",
    "CALIB_REPEAT",
    "DECODER",
    "DECODER_CONVS",
    "DISC",
    "DMENet",
    "DMENetModel",
    "FULLRES",
    "HEAD",
    "LRELU",
    "N_RES",
    "SKIPS",
    "STRIDE",
    "SUBNETS",
    "TARGETS",
    "VGG_INPUTS",
    "AuxHead",
    "BlurNet",
    "CalibrationNet",
    "ContentNet",
    "Discriminator",
    "ResBlock",
    "Trainer",
    "augment",
    "caffe_normalise",
    "conv_bn",
    "resize_nearest_tf",
]
