"""In-place elementwise ops, concat written in place, and the memory-aware execution order.

Each test states the exact arena (or lower bound) the storage rules must give, compares the plan
with the one the same graph gets without in-place rules (`analyze_storage(graph, inplace=False)`),
and checks the C against PyTorch (under ASan/UBSan where `sanitize=True`), so in-place C is proven
to compute what PyTorch computes.
"""

import pytest
import torch
import torch.nn as nn
from helpers import check_model, op_model

import modelblocks
from modelblocks.memory.liveness import analyze_storage
from modelblocks.passes import PIPELINE
from modelblocks.passes.schedule import best_order, peak_live_bytes


def compiled_of(model, *inputs, sanitize=False, passes=PIPELINE):
    """On the reference kernels: the arenas below are the tensors' alone (optimised kernels add scratch)."""
    torch.manual_seed(1)
    model = model.eval()
    compiled = modelblocks.compile(model, inputs, passes=passes, kernels="reference")
    check_model(model, inputs, compiled=compiled, sanitize=sanitize)
    return compiled


def c_body(compiled) -> str:
    return compiled.source.files["model.c"].split("_run(", 1)[1]


def n_buffers(plan) -> int:
    return sum(1 for b in plan.buffers if not b.name.endswith("__scratch"))


# -- elementwise in place -----------------------------------------------------------------------

def test_activation_chain_runs_in_one_buffer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), nn.Sigmoid(), nn.Tanh(), nn.GELU(), nn.Linear(32, 8))
    compiled = compiled_of(model, torch.randn(1, 16), sanitize=True)
    graph, plan = compiled.graph, compiled.source.plan
    before = analyze_storage(graph, inplace=False)
    assert graph.ops_count() == {"linear": 2, "sigmoid": 1, "tanh": 1, "gelu": 1}
    assert n_buffers(before) == 4 and n_buffers(plan) == 1
    assert compiled.source.arena_bytes == 32 * 4  # one (1, 32) float buffer
    assert set(plan.inplace) == {n.name for n in graph.nodes if n.op in ("sigmoid", "tanh", "gelu")}
    body = c_body(compiled)
    assert "mb_sigmoid_f32(t_0_linear, t_0_linear," in body or body.count("in place over") == 3


def test_graph_output_absorbs_the_chain_that_feeds_it():
    # Linear -> Sigmoid -> Tanh, Tanh is the output: the Linear writes into the caller's buffer
    model = nn.Sequential(nn.Linear(16, 32), nn.Sigmoid(), nn.Tanh())
    compiled = compiled_of(model, torch.randn(1, 16), sanitize=True)
    assert compiled.source.arena_bytes == 0 and compiled.source.plan.buffers == []
    assert "mb_linear_f32(input, model_0_weight, model_0_bias, out0," in c_body(compiled)


def test_graph_input_is_never_overwritten():
    x = torch.randn(3, 5)
    compiled = compiled_of(op_model(lambda x: (torch.sigmoid(x), x * 2)), x, sanitize=False)
    assert compiled.source.plan.inplace == {}
    assert compiled.source.arena_bytes == 0


def test_residual_add_in_place():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.fc3 = nn.Linear(8, 32), nn.Linear(32, 32), nn.Linear(32, 4)

        def forward(self, x):
            h = torch.relu(self.fc1(x))
            return self.fc3(self.fc2(h) + h)

    compiled = compiled_of(Residual(), torch.randn(1, 8), sanitize=True)
    graph, plan = compiled.graph, compiled.source.plan
    assert n_buffers(analyze_storage(graph, inplace=False)) == 3 and n_buffers(plan) == 2
    add = next(n for n in graph.nodes if n.op == "add")
    assert add.name in plan.inplace
    # h and fc2's output are both alive at the add, the sum takes one of their places
    assert compiled.source.arena_bytes == 2 * 32 * 4


def test_broadcast_operand_is_not_overwritten():
    # s is (1, 1) and broadcast: only the full-size operand a may be overwritten, even as operand 1
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 16)

        def forward(self, x):
            a = self.fc(x)
            s = torch.sigmoid(a.mean(dim=1, keepdim=True))
            return torch.tanh(s * a)

    compiled = compiled_of(Gate(), torch.randn(1, 6), sanitize=False)
    graph, plan = compiled.graph, compiled.source.plan
    mul = next(n for n in graph.nodes if n.op == "mul")
    assert plan.inplace[mul.name] == mul.inputs[1]
    assert plan.root[mul.outputs[0]] == plan.root[mul.inputs[1]] != plan.root[mul.inputs[0]]


def test_no_in_place_when_the_input_is_read_later():
    x = torch.randn(2, 7)
    model = op_model(lambda x: (lambda h: torch.sigmoid(h) + h)(x * 3))
    compiled = compiled_of(model, x, sanitize=False)
    graph, plan = compiled.graph, compiled.source.plan
    sig = next(n for n in graph.nodes if n.op == "sigmoid")
    assert sig.name not in plan.inplace  # h is still read by the add
    add = next(n for n in graph.nodes if n.op == "add")
    assert add.name in plan.inplace  # output of the add is the graph output: h moves into out0
    assert compiled.source.arena_bytes == 2 * 7 * 4  # just sigmoid(h)


# -- concat in place ----------------------------------------------------------------------------

class TwoConvCat(nn.Module):
    def __init__(self, head: bool = True):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 6, 1)
        self.head = nn.Conv2d(10, 2, 1) if head else None

    def forward(self, x):
        y = torch.cat([self.a(x), torch.relu(self.b(x))], dim=1)
        return self.head(y) if self.head is not None else y


def test_concat_of_two_convs_writes_into_the_output_buffer():
    compiled = compiled_of(TwoConvCat(), torch.randn(1, 3, 8, 8), sanitize=True)
    graph, plan = compiled.graph, compiled.source.plan
    cat = next(n for n in graph.nodes if n.op == "concat")
    assert plan.concat_copies == {cat.name: []}
    assert "mb_concat" not in compiled.source.files["model.c"] and "memcpy" not in c_body(compiled)
    a, b = cat.inputs
    assert plan.root[a] == plan.root[b] == plan.root[cat.outputs[0]]
    assert (plan.offset_of(a), plan.offset_of(b)) == (0, 4 * 64 * 4)
    assert n_buffers(analyze_storage(graph, inplace=False)) == 3 and n_buffers(plan) == 1
    assert compiled.source.arena_bytes == 10 * 64 * 4  # only the concat's output
    assert "(t_cat + 256)" in c_body(compiled) or "+ 256)" in c_body(compiled)


def test_concat_that_is_the_graph_output():
    compiled = compiled_of(TwoConvCat(head=False), torch.randn(1, 3, 8, 8), sanitize=True)
    assert compiled.source.arena_bytes == 0
    assert "(out0 + 256)" in c_body(compiled) and "mb_concat" not in compiled.source.files["model.c"]


def test_concat_with_batch_two_is_a_copy():
    compiled = compiled_of(TwoConvCat(), torch.randn(2, 3, 8, 8), sanitize=False)
    assert compiled.source.plan.concat_copies == {}
    assert "mb_concat_f32(" in c_body(compiled)


def test_class_token_is_copied_and_patches_are_written_in_place():
    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.patch = nn.Conv2d(3, 8, 4, stride=4)
            self.cls = nn.Parameter(torch.randn(1, 1, 8))
            self.pos = nn.Parameter(torch.randn(1, 5, 8))
            self.fc = nn.Linear(8, 3)

        def forward(self, x):
            t = self.patch(x).flatten(2).transpose(1, 2)
            t = torch.cat([self.cls.expand(x.shape[0], -1, -1), t], dim=1) + self.pos
            return self.fc(t)

    compiled = compiled_of(Tokens(), torch.randn(1, 3, 8, 8), sanitize=True)
    graph, plan = compiled.graph, compiled.source.plan
    cat = next(n for n in graph.nodes if n.op == "concat")
    assert plan.concat_copies == {cat.name: [0]}  # the constant class token is copied
    body = c_body(compiled)
    assert "mb_concat" not in compiled.source.files["model.c"]
    assert body.count("memcpy(") == 1 and "32u);" in body  # 8 floats of class token
    # the patch tokens (a transposed copy) are written straight into rows 1..4 of the concat
    assert plan.offset_of(cat.inputs[1]) == 8 * 4


def test_concat_input_still_read_later_is_copied():
    class Later(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 6), nn.Linear(4, 5)

        def forward(self, x):
            a, b = self.a(x), self.b(x)
            return torch.cat([a, b], dim=1).sum(1, keepdim=True) * a

    compiled = compiled_of(Later(), torch.randn(1, 4), sanitize=True)
    cat = next(n for n in compiled.graph.nodes if n.op == "concat")
    assert compiled.source.plan.concat_copies == {cat.name: [0]}


def test_stack_of_views_and_nested_cat():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.l = nn.ModuleList(nn.Linear(5, 4) for _ in range(3))

        def forward(self, x):
            s = torch.stack([self.l[0](x), self.l[1](x)], dim=0)  # reshape views + concat, outer 1
            t = torch.cat([s, torch.sigmoid(self.l[2](x)).unsqueeze(0)], dim=0)
            return t.relu() * 2.0

    compiled = compiled_of(Stack(), torch.randn(1, 5), sanitize=True)
    graph, plan = compiled.graph, compiled.source.plan
    cats = [n for n in graph.nodes if n.op == "concat"]
    assert len(cats) == 2 and all(plan.concat_copies[c.name] == [] for c in cats)
    assert compiled.source.arena_bytes == 0  # everything lands in the caller's (3, 1, 4) buffer
    linears = [n for n in graph.nodes if n.op == "linear"]
    assert sorted(plan.offset_of(n.outputs[0]) for n in linears) == [0, 16, 32]


def test_repeated_concat_input_is_copied():
    x = torch.randn(1, 3)
    compiled = compiled_of(op_model(lambda x: (lambda h: torch.cat([h, h], dim=1) + 1)(torch.sigmoid(x))),
                           x, sanitize=False)
    assert compiled.source.plan.concat_copies == {}


# -- execution order ----------------------------------------------------------------------------

class Interleaved(nn.Module):
    """Two branches that each expand to 256 features and shrink back, written interleaved."""

    def __init__(self):
        super().__init__()
        self.a1, self.a2 = nn.Linear(16, 256), nn.Linear(256, 16)
        self.b1, self.b2 = nn.Linear(16, 256), nn.Linear(256, 16)
        self.out = nn.Linear(16, 4)

    def forward(self, x):
        a, b = self.a1(x), self.b1(x)
        a, b = self.a2(a), self.b2(b)
        return self.out(torch.relu(a + b))


def test_schedule_lowers_the_lower_bound_of_a_branchy_model():
    x = torch.randn(1, 16)
    plain = compiled_of(Interleaved(), x, passes=PIPELINE[:-1])
    scheduled = compiled_of(Interleaved(), x, sanitize=True)
    # original: a1 and b1 outputs (1 KB each) alive together while a2 runs, plus a2's output
    assert peak_live_bytes(plain.graph) == 1024 + 1024 + 64
    # scheduled: one branch finishes before the other starts
    assert peak_live_bytes(scheduled.graph) == 1024 + 64 + 64
    assert scheduled.source.arena_bytes == 1024 + 64 + 64 < plain.source.arena_bytes
    name, _order, bounds = best_order(plain.graph)
    assert bounds["original"] == 2112 and bounds[name] == 1152
    assert [n.op for n in scheduled.graph.nodes].count("linear") == 5


def test_schedule_keeps_sequential_models_unchanged():
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    compiled = compiled_of(model, torch.randn(1, 4))
    plain = compiled_of(model, torch.randn(1, 4), passes=PIPELINE[:-1])
    assert [n.name for n in compiled.graph.nodes] == [n.name for n in plain.graph.nodes]


class Inception(nn.Module):
    def __init__(self):
        super().__init__()
        self.b = nn.ModuleList([nn.Sequential(nn.Conv2d(4, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 4, 1))
                                for _ in range(3)])
        self.mix = nn.Conv2d(12, 4, 1)

    def forward(self, x):
        hs = [b[0](x) for b in self.b]  # all wide activations first: the worst order
        hs = [b[2](b[1](h)) for b, h in zip(self.b, hs)]
        return self.mix(torch.cat(hs, dim=1)) + x


@pytest.mark.parametrize("batch", [1, 2])
def test_inception_block_scheduled_and_in_place(batch):
    x = torch.randn(batch, 4, 8, 8)
    plain = compiled_of(Inception(), x, passes=PIPELINE[:-1])
    scheduled = compiled_of(Inception(), x, sanitize=batch == 1)
    assert peak_live_bytes(scheduled.graph) < peak_live_bytes(plain.graph)
    assert scheduled.source.arena_bytes < plain.source.arena_bytes


def test_unfolded_batch_norm_runs_in_place():
    # BatchNorm after a ReLU cannot be folded into the conv; mb_batch_norm_f32 reads x[i] before it
    # writes y[i], so it overwrites the ReLU's output
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(512, 3))
    with torch.no_grad():
        model[2].running_mean.uniform_(-0.5, 0.5)
        model[2].running_var.uniform_(0.5, 2.0)
    compiled = compiled_of(model, torch.randn(1, 3, 8, 8), sanitize=True)
    graph, plan = compiled.graph, compiled.source.plan
    bn = next(n for n in graph.nodes if n.op == "batch_norm")
    assert bn.name in plan.inplace
    assert n_buffers(analyze_storage(graph, inplace=False)) == 2 and n_buffers(plan) == 1
    assert compiled.source.arena_bytes == 8 * 8 * 8 * 4 + sum(b.size for b in plan.buffers if "scratch" in b.name)
