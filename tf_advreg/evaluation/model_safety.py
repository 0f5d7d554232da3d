"""Refusing SavedModels whose graph can do more than compute tensors.

Loading a SavedModel runs no Python, but its graph may hold ops with effects outside the
process: writing or deleting files (WriteFile, SaveV2, DeleteFile), reading them (ReadFile,
MatchingFiles), calling back into Python (PyFunc, EagerPyFunc), or talking to other hosts.
Such ops run when the serving function (or a resource initializer run at load time) is called.
So before a SavedModel is loaded, every op type in its MetaGraph (the graph's nodes and every
function in its library) is compared with `ALLOWED_OPS`, a list of pure tensor ops; anything
else is refused unless the user says they trust the model.

The functions the MetaGraph's saver uses to save and restore variables (SaveV2, RestoreV2,
...) are not checked: TensorFlow's loader restores variables with ops of its own and never
calls them. They are checked like any other function if another function calls them.
"""

import os
from pathlib import Path

from tensorflow.core.protobuf import saved_model_pb2

# Ops that only compute tensors from tensors, or read and write the model's own variables.
ALLOWED_OPS = frozenset(
    # graph plumbing, function calls and control flow
    "Const Identity IdentityN NoOp Placeholder PlaceholderWithDefault StopGradient "
    "PartitionedCall StatefulPartitionedCall If StatelessIf While StatelessWhile Case "
    "StatelessCase "
    # the model's own variables
    "VarHandleOp ReadVariableOp AssignVariableOp AssignAddVariableOp AssignSubVariableOp "
    "VarIsInitializedOp ResourceGather "
    # elementwise arithmetic and comparison
    "Abs Add AddN AddV2 Sub Mul RealDiv Div DivNoNan FloorDiv FloorMod Neg Reciprocal Square "
    "SquaredDifference Sqrt Rsqrt Exp Log Log1p Pow Maximum Minimum Sign Floor Ceil Round "
    "Tanh Sigmoid Erf Cast Equal NotEqual Less LessEqual Greater GreaterEqual LogicalAnd "
    "LogicalOr LogicalNot Select SelectV2 ClipByValue IsNan IsFinite IsInf "
    # reductions and linear algebra
    "Sum Mean Max Min Prod All Any ArgMax ArgMin MatMul BatchMatMul BatchMatMulV2 "
    "BatchMatMulV3 Einsum Cumsum "
    # neural-network layers
    "Conv2D DepthwiseConv2dNative BiasAdd Relu Relu6 Elu Selu LeakyRelu Softplus Softsign "
    "Softmax LogSoftmax MaxPool AvgPool FusedBatchNorm FusedBatchNormV3 L2Loss "
    # shapes and indexing
    "Shape ShapeN Size Rank Reshape Squeeze ExpandDims Transpose ConcatV2 Pack Unpack Split "
    "SplitV Slice StridedSlice Tile Pad PadV2 MirrorPad Fill ZerosLike OnesLike Range "
    "BroadcastTo BroadcastArgs GatherV2 GatherNd OneHot Where TopKV2 "
    "ResizeBilinear ResizeNearestNeighbor".split()
)


class UntrustedModelError(ValueError):
    """The SavedModel holds an op outside `ALLOWED_OPS`."""


def disallowed_ops(path: str | os.PathLike) -> list[str]:
    """The op types of the SavedModel at `path` that are not in `ALLOWED_OPS`, sorted."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString((Path(path) / "saved_model.pb").read_bytes())
    found = set()
    for meta_graph in saved_model.meta_graphs:
        found |= _reachable_ops(meta_graph)
    return sorted(found - ALLOWED_OPS)


def check(path: str | os.PathLike) -> None:
    """Raises UntrustedModelError naming the first op outside `ALLOWED_OPS`."""
    bad = disallowed_ops(path)
    if bad:
        others = f" (and {len(bad) - 1} more: {', '.join(bad[1:])})" if len(bad) > 1 else ""
        raise UntrustedModelError(
            f"{path} contains the op {bad[0]}{others}, which can act outside the model (files, "
            "Python, the network); only pure tensor ops are run unchecked "
            "(tf_advreg/evaluation/model_safety.py). Pass --trust_model if you trust its source."
        )


def _called_functions(node, library: set[str]) -> set[str]:
    """The library functions a node calls: by its op name or through function attributes."""
    called = {node.op} & library
    for value in node.attr.values():
        called |= {value.func.name} & library
        called |= {f.name for f in value.list.func} & library
    return called


def _reachable_ops(meta_graph) -> set[str]:
    """Op types of the graph's nodes and of every function that can run, saver's excluded."""
    graph = meta_graph.graph_def
    functions = {f.signature.name: f for f in graph.library.function}
    library = set(functions)
    saver_nodes = _saver_nodes(meta_graph)
    nodes = [node for node in graph.node if node.name not in saver_nodes]
    saver_functions = set()
    for node in graph.node:
        if node.name in saver_nodes:
            saver_functions |= _called_functions(node, library)
    pending = (library - saver_functions) | {
        name for node in nodes for name in _called_functions(node, library)
    }
    ops, seen = set(), set()
    while pending:
        name = pending.pop()
        seen.add(name)
        for node in functions[name].node_def:
            pending |= _called_functions(node, library) - seen
            nodes.append(node)
    for node in nodes:
        if node.op not in library:
            ops.add(node.op)
    return ops


def _saver_nodes(meta_graph) -> set[str]:
    """Names of the graph nodes that save and restore variables (the saver's save/restore)."""
    saver = meta_graph.saver_def
    names = {name.split(":")[0] for name in (saver.save_tensor_name, saver.restore_op_name)}
    names.discard("")
    scope = saver.restore_op_name.rpartition("/")[0]  # TF1 savers put their ops under save/
    if scope:
        names |= {n.name for n in meta_graph.graph_def.node if n.name.startswith(f"{scope}/")}
    return names
