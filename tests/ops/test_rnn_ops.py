"""Per-op tests of the recurrent family (lstm, gru, rnn) against torch: layers, directions,
batch_first, biases, projections, given and default states, batch and sequence sizes."""

import pytest
import torch

from helpers import check_model
from modelblocks.errors import UnsupportedOpError
from modelblocks.ops.registry import supported_aten

torch.manual_seed(0)

needs_select = pytest.mark.skipif("aten.select.int" not in supported_aten(),
                                  reason="select/slice ops (ops/layout.py) not available yet")

CLASSES = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}


class Recurrent(torch.nn.Module):
    """Runs one recurrent module; extra forward arguments are its initial state(s)."""

    def __init__(self, module: torch.nn.Module):
        super().__init__()
        self.rnn = module

    def forward(self, x, *state):
        if len(state) == 2:
            return self.rnn(x, (state[0], state[1]))
        if len(state) == 1:
            return self.rnn(x, state[0])
        return self.rnn(x)


def _inputs(module, batch: int, seq: int, given_state: bool):
    x = torch.randn((batch, seq, module.input_size) if module.batch_first else (seq, batch, module.input_size))
    if not given_state:
        return (x,)
    dirs = 2 if module.bidirectional else 1
    out = getattr(module, "proj_size", 0) or module.hidden_size
    h0 = torch.randn(module.num_layers * dirs, batch, out)
    if isinstance(module, torch.nn.LSTM):
        return (x, h0, torch.randn(module.num_layers * dirs, batch, module.hidden_size))
    return (x, h0)


def case(kind, input_size, hidden_size, *, batch=3, seq=7, state=False, sanitize=False, **kwargs):
    """(kind, constructor kwargs, batch, seq, given_state, sanitize); state=True passes h0 (and c0)."""
    return (kind, dict(input_size=input_size, hidden_size=hidden_size, **kwargs), batch, seq, state, sanitize)


CASES = {
    "lstm_1layer": case("lstm", 5, 8),
    "lstm_2layer_batch_first": case("lstm", 4, 6, num_layers=2, batch_first=True),
    "lstm_bidirectional_2layer": case("lstm", 5, 6, num_layers=2, bidirectional=True),
    "lstm_3layer_bidirectional_batch_first": case("lstm", 3, 5, num_layers=3, bidirectional=True, batch_first=True,
                                                  batch=2, seq=6, sanitize=True),
    "lstm_no_bias": case("lstm", 5, 7, bias=False),
    "lstm_given_state": case("lstm", 5, 8, state=True),
    "lstm_given_state_bidirectional_2layer_batch_first": case("lstm", 4, 6, num_layers=2, bidirectional=True,
                                                              batch_first=True, state=True),
    "lstm_proj": case("lstm", 5, 8, proj_size=3),
    "lstm_proj_bidirectional_2layer_given_state": case("lstm", 5, 8, proj_size=3, num_layers=2, bidirectional=True,
                                                       batch=2, seq=5, state=True, sanitize=True),
    "lstm_hidden_larger_than_input": case("lstm", 2, 16, batch=1),
    "gru_1layer": case("gru", 5, 8),
    "gru_2layer_batch_first": case("gru", 4, 6, num_layers=2, batch_first=True),
    "gru_bidirectional_2layer": case("gru", 5, 6, num_layers=2, bidirectional=True, sanitize=True),
    "gru_3layer": case("gru", 3, 4, num_layers=3, batch=2),
    "gru_no_bias": case("gru", 5, 7, bias=False),
    "gru_given_state": case("gru", 5, 8, num_layers=2, bidirectional=True, state=True),
    "rnn_tanh": case("rnn", 5, 8),
    "rnn_relu": case("rnn", 5, 8, nonlinearity="relu", sanitize=True),
    "rnn_tanh_bidirectional_3layer_batch_first": case("rnn", 4, 6, num_layers=3, bidirectional=True, batch_first=True),
    "rnn_relu_2layer_no_bias": case("rnn", 4, 6, num_layers=2, nonlinearity="relu", bias=False),
    "rnn_tanh_given_state": case("rnn", 5, 8, num_layers=2, state=True),
    "rnn_relu_given_state_bidirectional": case("rnn", 5, 8, nonlinearity="relu", bidirectional=True, state=True),
}


@pytest.mark.parametrize("name", list(CASES))
def test_recurrent(name):
    kind, kwargs, batch, seq, given_state, sanitize = CASES[name]
    module = CLASSES[kind](**kwargs)
    res = check_model(Recurrent(module), _inputs(module, batch, seq, given_state), sanitize=sanitize)
    graph = res["compiled"].graph
    nodes = [n for n in graph.nodes if n.op == kind]
    assert len(nodes) == 1, [n.op for n in graph.nodes]
    # default zero states are not stored as weights: the kernel zero-fills
    assert len(graph.inputs) == (1 + (2 if kind == "lstm" else 1) if given_state else 1)
    if not given_state:
        assert not any(nodes[0].inputs[1:3 if kind == "lstm" else 2])
    # one kernel call per layer and direction
    calls = res["compiled"].source.files["model.c"].count(f"mb_{kind}_f32(")
    assert calls == module.num_layers * (2 if module.bidirectional else 1)


SIZES = [("lstm", 1, 1), ("lstm", 1, 7), ("lstm", 3, 1), ("lstm", 3, 7),
         ("gru", 1, 1), ("gru", 3, 7), ("rnn", 1, 7), ("rnn", 3, 1)]


@pytest.mark.parametrize("kind,batch,seq", SIZES, ids=[f"{k}_b{b}_t{t}" for k, b, t in SIZES])
def test_batch_and_sequence_sizes(kind, batch, seq):
    module = CLASSES[kind](input_size=3, hidden_size=5, num_layers=2, bidirectional=True, batch_first=(batch == 3))
    check_model(Recurrent(module), _inputs(module, batch, seq, False), sanitize=False)


def test_macs_count_matrix_vector_products():
    module = torch.nn.LSTM(input_size=5, hidden_size=8, num_layers=2, bidirectional=True)
    import modelblocks
    from modelblocks.ops.registry import get_op

    graph = modelblocks.compile(Recurrent(module), _inputs(module, 3, 7, False)).graph
    node = next(n for n in graph.nodes if n.op == "lstm")
    macs = get_op("lstm").macs(node, [graph.tensors[i] if i else None for i in node.inputs],
                               [graph.tensors[o] for o in node.outputs])
    per_step = 2 * (4 * 8 * (5 + 8)) + 2 * (4 * 8 * (16 + 8))  # both directions of both layers
    assert macs == 3 * 7 * per_step


class LSTMClassifierFromState(torch.nn.Module):
    """LSTM -> last timestep (h_n of a 1-layer unidirectional LSTM) -> Linear."""

    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(input_size=6, hidden_size=12, batch_first=True)
        self.head = torch.nn.Linear(12, 4)

    def forward(self, x):
        _out, (h_n, _c_n) = self.lstm(x)
        return self.head(h_n.reshape(x.shape[0], 12))


def test_lstm_classifier_from_final_state():
    check_model(LSTMClassifierFromState(), torch.randn(3, 7, 6), sanitize=False)


class LSTMClassifier(torch.nn.Module):
    """LSTM -> out[:, -1] -> Linear, the usual sequence classifier."""

    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(input_size=6, hidden_size=12, num_layers=2, batch_first=True, bidirectional=True)
        self.head = torch.nn.Linear(24, 4)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


@needs_select
def test_lstm_classifier_last_timestep():
    check_model(LSTMClassifier(), torch.randn(3, 7, 6), sanitize=False)


class TrainingLSTM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(3, 4)

    def forward(self, x):
        hx = (torch.zeros(1, x.shape[1], 4), torch.zeros(1, x.shape[1], 4))
        return torch.lstm(x, hx, self.lstm._flat_weights, True, 1, 0.0, True, False, False)[0]


def test_training_mode_is_unsupported():
    import modelblocks

    with pytest.raises(UnsupportedOpError, match="training mode"):
        modelblocks.compile(TrainingLSTM(), (torch.randn(5, 2, 3),))


CELLS = {"lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell, "rnn_tanh": torch.nn.RNNCell, "rnn_relu": torch.nn.RNNCell}


class Cell(torch.nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, x, *state):
        if len(state) == 2:
            return self.cell(x, (state[0], state[1]))
        if len(state) == 1:
            return self.cell(x, state[0])
        return self.cell(x)


@pytest.mark.parametrize("batch,given_state", [(1, False), (3, True)], ids=["b1_zero_state_no_bias", "b3_given_state"])
@pytest.mark.parametrize("kind", list(CELLS))
def test_cell(kind, batch, given_state):
    kwargs = {"nonlinearity": kind[4:]} if kind.startswith("rnn") else {}
    cell = CELLS[kind](5, 7, bias=(batch == 3), **kwargs)
    inputs = [torch.randn(batch, 5)]
    if given_state:
        inputs += [torch.randn(batch, 7) for _ in range(2 if kind == "lstm" else 1)]
    check_model(Cell(cell), tuple(inputs), sanitize=(kind == "lstm" and batch == 3 and given_state))


class UnrolledLSTMCell(torch.nn.Module):
    """Streaming form: an LSTMCell stepped over the sequence in Python, then a Linear head."""

    def __init__(self):
        super().__init__()
        self.cell = torch.nn.LSTMCell(4, 6)
        self.head = torch.nn.Linear(6, 2)

    def forward(self, x):
        h = c = torch.zeros(x.shape[1], 6)
        for t in range(x.shape[0]):
            h, c = self.cell(x[t], (h, c))
        return self.head(h)


@needs_select
def test_unrolled_lstm_cell():
    check_model(UnrolledLSTMCell(), torch.randn(5, 3, 4), sanitize=False)
