"""Model H's design in numbers (its layers are built in model_h.py): here without torch, so that the
report can describe H without importing the training code. A change here changes what H's runs
compute: bump H's code version (versions.CODE_VERSIONS["H"]).
"""

WIDTHS = (64, 256, 256)  # output channels of the three blocks
# Model H-95 ("H95"): H with wider blocks, after airbench95 (Jordan 2024), which trains (128, 384, 384) for
# 95% where airbench94 trains (64, 256, 256) for 94%; everything else as H
WIDTHS_95 = (128, 384, 384)
WHITEN_PATCH = 2  # side of the whitened patches
WHITEN_IMAGES = 5_000  # training images whose patches give the whitening (the first of the seeded split)
WHITEN_EPS = 3e-5  # added to the patch covariance's eigenvalues (pixels in [0, 1]), so that noise is not blown up
BN_MOMENTUM = 0.4  # PyTorch's convention: the weight of the newest batch in the running statistics
HEAD_SCALE = 1 / 9  # the classifier's logits are scaled down, so that training starts from soft outputs
BIAS_LR_SCALE = 64.0  # batch-norm biases learn at this multiple of the learning rate

# The ideas an ablation can leave out (TrainConfig.without), each alone or together:
# "whitening": the first layer is an ordinary trainable 2x2 conv with PyTorch's initialisation;
# "dirac": every conv keeps PyTorch's random initialisation; "bias_lr": batch-norm biases learn at
# the learning rate of the other weights. (The recipe's ideas are TrainConfig settings: lookahead,
# label_smoothing, alternating_flip, augment; test-time augmentation is measured beside plain accuracy.)
INGREDIENTS = ("whitening", "dirac", "bias_lr")
