import pytest
import torch
from torch import nn

from convladder.core.blocks import get_conv_block
from convladder.core.models import count_parameters, create_model, predict_proba
from convladder.core.registry import model_names, study_model_names


def conv(c_in, c_out, k=3):
    return c_in * c_out * k * k + c_out


def bn(c):
    return 2 * c


def linear(n_in, n_out):
    return n_in * n_out + n_out


# Parameter counts worked out by hand from the study's layer lists.
EXPECTED_PARAMS = {
    "A": conv(3, 5) + conv(5, 5) + linear(5 * 4 * 4, 10),  # 1,180 (the study said 181)
    "B": conv(3, 20) + conv(20, 20) + linear(20 * 4 * 4, 10),
    "C": conv(3, 20) + conv(20, 20) + conv(20, 40) + conv(40, 40) + linear(40 * 8 * 8, 10),
    "D": conv(3, 20) + conv(20, 20) + conv(20, 40) + conv(40, 40) + linear(40 * 8 * 8, 10),
    "E": sum(conv(a, b) + conv(b, b) for a, b in [(3, 20), (20, 40), (40, 80), (80, 160)]) + linear(640, 10),
    "F": sum(conv(a, b) + conv(b, b) + 2 * bn(b) for a, b in [(3, 20), (20, 40), (40, 80), (80, 160)]) + linear(640, 10),
    "G": sum(conv(a, b) + conv(b, b) + 2 * bn(b) for a, b in [(3, 20), (20, 40), (40, 80), (80, 160)]) + linear(640, 10),
    "GAP": sum(conv(a, b) + conv(b, b) + 2 * bn(b) for a, b in [(3, 20), (20, 40), (40, 80)])
    + conv(80, 160) + bn(160) + conv(160, 160) + bn(160) + linear(160, 10),
}


@pytest.mark.parametrize("name", model_names())
def test_every_model_maps_32x32_images_to_10_logits(name):
    model = create_model(name)
    assert model(torch.rand(4, 3, 32, 32)).shape == (4, 10)


@pytest.mark.parametrize("name", study_model_names())
def test_parameter_counts_match_the_hand_count(name):
    assert count_parameters(create_model(name)) == EXPECTED_PARAMS[name]


def test_model_a_count_is_not_the_studys_181():
    assert count_parameters(create_model("A")) == 1180


@pytest.mark.parametrize("height", [20, 18, 32, 48])
def test_gap_takes_other_image_sizes(height):
    model = create_model("GAP").eval()
    assert model(torch.rand(2, 3, height, 32)).shape == (2, 10)


def test_fixed_size_models_reject_other_sizes():
    with pytest.raises(RuntimeError):
        create_model("G")(torch.rand(1, 3, 20, 32))


def test_unknown_model_lists_the_valid_names():
    with pytest.raises(ValueError, match="A, B, C, D, E, F, G, GAP, H"):
        create_model("X")


def test_study_softmax_appends_softmax_and_predict_proba_is_a_distribution():
    model = create_model("D", study_softmax=True)
    assert isinstance(model[-1], nn.Softmax)
    x = torch.rand(3, 3, 32, 32)
    p = predict_proba(model, x)
    assert torch.allclose(p.sum(1), torch.ones(3)) and (p >= 0).all()
    plain = create_model("D")
    plain.load_state_dict({k: v for k, v in model.state_dict().items()})
    assert torch.allclose(predict_proba(plain, x), p, atol=1e-6)


def test_conv_block_layout_and_order():
    block = get_conv_block(3, 8, 16, activation_func_str="sigmoid", batch_norm=True, dropout_rate=0.25, pool_size=4)
    kinds = [type(m).__name__ for m in block]
    assert kinds == ["Conv2d", "Sigmoid", "BatchNorm2d", "Conv2d", "Sigmoid", "BatchNorm2d", "MaxPool2d", "Dropout"]
    assert block[0].out_channels == 8 and block[3].out_channels == 16 and block[0].padding == "same"
    assert block[6].kernel_size == 4 and block[7].p == 0.25
    assert block(torch.rand(1, 3, 32, 32)).shape == (1, 16, 8, 8)
    plain = get_conv_block(3, 8, 8, kernel_a_size=5)
    assert [type(m).__name__ for m in plain] == ["Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d"]
    assert plain[0].kernel_size == (5, 5)


def test_conv_block_rejects_unknown_activation():
    with pytest.raises(ValueError, match="unknown activation 'tanh'"):
        get_conv_block(3, 8, 8, activation_func_str="tanh")
