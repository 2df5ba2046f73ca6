"""The digits models' training code: the data split, and that each model reaches its float target.

Trained models are cached per process in `modelblocks.models.digits`, so other tests (and the
example) that use `digits.trained(name)` pay for training once per pytest worker."""

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

from modelblocks.models import digits  # noqa: E402


def test_split_is_stratified_disjoint_and_deterministic():
    data = digits.load_data()
    n = [len(data.y_train), len(data.y_calib), len(data.y_test)]
    assert sum(n) == 1797
    assert n == [1077, 180, 540]
    # disjoint, and together the whole set; each split holds exactly the images its indices name
    parts = [data.index_train, data.index_calib, data.index_test]
    assert sorted(np.concatenate(parts).tolist()) == list(range(1797))
    from sklearn.datasets import load_digits

    full = load_digits()
    for x, y, index in ((data.x_train, data.y_train, data.index_train), (data.x_calib, data.y_calib, data.index_calib),
                        (data.x_test, data.y_test, data.index_test)):
        np.testing.assert_array_equal(x.numpy() * 16, full.images[index].reshape(-1, 1, 8, 8))
        np.testing.assert_array_equal(y.numpy(), full.target[index])
    # stratified: every class in every split, in proportion within one sample
    total = np.bincount(full.target, minlength=10)
    for y, frac in ((data.y_train, 0.6), (data.y_calib, 0.1), (data.y_test, 0.3)):
        counts = np.bincount(y.numpy(), minlength=10)
        assert np.all(np.abs(counts - total * frac) <= 1.5), counts
    # deterministic: a fresh load gives identical splits
    digits._DATA.clear()
    again = digits.load_data()
    for a, b in zip((data.x_train, data.y_train, data.x_calib, data.y_calib, data.x_test, data.y_test),
                    (again.x_train, again.y_train, again.x_calib, again.y_calib, again.x_test, again.y_test)):
        assert torch.equal(a, b)
    for a, b in zip((data.index_train, data.index_calib, data.index_test),
                    (again.index_train, again.index_calib, again.index_test)):
        np.testing.assert_array_equal(a, b)


def test_shapes_dtypes_and_range():
    data = digits.load_data()
    for x, y in ((data.x_train, data.y_train), (data.x_calib, data.y_calib), (data.x_test, data.y_test)):
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[1:] == (1, 8, 8) and x.shape[0] == y.shape[0]
        assert float(x.min()) == 0.0 and float(x.max()) == 1.0
        assert set(y.unique().tolist()) == set(range(10))


@pytest.mark.parametrize("name", ["mlp", "cnn", "vit"])
def test_untrained_models_give_logits(name):
    model = digits.build(name).eval()
    with torch.no_grad():
        out = model(digits.load_data().x_test[:3])
    assert out.shape == (3, 10)
    again = digits.build(name).state_dict()  # seeded init
    assert all(torch.equal(v, again[k]) for k, v in model.state_dict().items())


def test_training_is_deterministic_and_thread_independent():
    data = digits.load_data()
    small = digits.DigitsData(data.x_train[:256], data.y_train[:256], data.x_calib, data.y_calib, data.x_test,
                              data.y_test)
    threads = torch.get_num_threads()
    states = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            model = digits.train(digits.build("cnn"), small, epochs=2, seed=3)
            states.append(model.state_dict())
            assert not model.training
            assert torch.get_num_threads() == n  # restored
    finally:
        torch.set_num_threads(threads)
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k]), k


@pytest.mark.parametrize("name", ["mlp", "cnn", "vit"])
def test_models_reach_float_targets(name):
    data = digits.load_data()
    info = digits.trained_info(name)
    acc = digits.accuracy(info.model, data.x_test, data.y_test)
    assert acc >= digits.TARGETS[name], f"{name}: {acc:.4f} < {digits.TARGETS[name]}"
    assert digits.trained(name) is info.model  # cached
    assert not info.model.training


def test_accuracy_helper_accepts_numpy_and_callables():
    x = np.zeros((5, 1, 8, 8), np.float32)
    y = np.array([3, 3, 3, 1, 3])

    def always_three(batch):
        out = np.zeros((len(batch), 10), np.float32)
        out[:, 3] = 1
        return out

    assert digits.accuracy(always_three, x, y) == pytest.approx(0.8)
    assert digits.accuracy(always_three, torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(0.8)
