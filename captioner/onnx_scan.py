"""What an ONNX file declares, read straight from its protobuf bytes (no `onnx` package here).

Two facts matter before onnxruntime may open a graph from a bundle:

* its inputs and outputs (names, element types, shapes), to refuse a renamed or reshaped graph
  with one clear line instead of failing on the first image;
* every external-data file its tensors point to: onnxruntime would open those paths (older
  releases even `../../etc/passwd`), so each must be a file the manifest lists and hashes.

Only the few message types on the way to those facts are decoded; everything else (weights
included) is skipped by length, so a 40 MB encoder is read in milliseconds. Field numbers are
those of onnx.proto3.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

MAX_DEPTH = 24  # graphs nested in attributes (If, Loop, Scan): deeper is refused as hostile
EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL

# field numbers (onnx.proto3)
MODEL_GRAPH, MODEL_TRAINING, MODEL_FUNCTIONS = 7, 20, 25
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_INPUT, GRAPH_OUTPUT, GRAPH_SPARSE = 1, 5, 11, 12, 15
NODE_ATTRIBUTE = 5
ATTR_T, ATTR_G, ATTR_TENSORS, ATTR_GRAPHS, ATTR_SPARSE, ATTR_SPARSES = 5, 6, 9, 10, 22, 23
TENSOR_NAME, TENSOR_EXTERNAL, TENSOR_LOCATION = 8, 13, 14
SPARSE_VALUES, SPARSE_INDICES = 1, 2
FUNCTION_NODE, FUNCTION_ATTRIBUTE = 7, 11
TRAINING_GRAPHS = (1, 2)  # initialization, algorithm


class OnnxScanError(ValueError):
    """The file is not an ONNX model this scanner can follow (damaged or hostile)."""


@dataclass(frozen=True)
class Port:
    """One graph input or output: name, ONNX element type (1 float, 7 int64) and shape.

    `dims` holds an int for a fixed size, a str for a named (dynamic) axis, None for an axis
    without either; `dims` is None when the graph declares no shape at all.
    """

    name: str
    elem_type: int
    dims: tuple[int | str | None, ...] | None


@dataclass
class GraphFacts:
    inputs: list[Port] = field(default_factory=list)
    outputs: list[Port] = field(default_factory=list)
    external: set[str] = field(default_factory=set)  # external-data locations, as written


def scan_onnx(path: Path) -> GraphFacts:
    """Read the top graph's ports and every external-data location anywhere in the model."""
    with open(path, "rb") as fh:
        if fh.seek(0, 2) == 0:
            raise OnnxScanError("empty file")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped, memoryview(mapped) as buf:
            facts = GraphFacts()
            for number, value in _fields(buf, 0, len(buf)):
                if number == MODEL_GRAPH and isinstance(value, tuple):
                    _graph(buf, value, facts, top=True, depth=0)
                elif number == MODEL_FUNCTIONS and isinstance(value, tuple):
                    _function(buf, value, facts, depth=0)
                elif number == MODEL_TRAINING and isinstance(value, tuple):
                    for inner, span in _fields(buf, *value):
                        if inner in TRAINING_GRAPHS and isinstance(span, tuple):
                            _graph(buf, span, facts, top=False, depth=1)
            return facts


Span = tuple[int, int]


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise OnnxScanError("damaged protobuf (bad varint)")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int | Span]]:
    """(field number, varint value or (start, end) of a length-delimited value)."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos, end)
            yield number, value
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise OnnxScanError("damaged protobuf (a field runs past its message)")
            yield number, (pos, pos + length)
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise OnnxScanError(f"damaged protobuf (wire type {wire})")
    if pos != end:
        raise OnnxScanError("damaged protobuf (truncated)")


def _text(buf: memoryview, span: int | Span) -> str:
    if not isinstance(span, tuple):
        raise OnnxScanError("damaged protobuf (a string field is not a string)")
    try:
        return bytes(buf[span[0]:span[1]]).decode("utf-8")
    except UnicodeDecodeError:
        raise OnnxScanError("damaged protobuf (a name is not UTF-8)") from None


def _graph(buf: memoryview, span: Span, facts: GraphFacts, top: bool, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise OnnxScanError("graphs nested too deep")
    inputs: list[Port] = []
    initialized: set[str] = set()
    for number, value in _fields(buf, *span):
        if not isinstance(value, tuple):
            continue
        if number == GRAPH_NODE:
            _node(buf, value, facts, depth)
        elif number == GRAPH_INITIALIZER:
            initialized.add(_tensor(buf, value, facts))
        elif number == GRAPH_SPARSE:
            _sparse(buf, value, facts)
        elif top and number == GRAPH_INPUT:
            inputs.append(_port(buf, value))
        elif top and number == GRAPH_OUTPUT:
            facts.outputs.append(_port(buf, value))
    if top:  # an input with an initializer has a default: onnxruntime does not ask for it
        facts.inputs = [port for port in inputs if port.name not in initialized]


def _node(buf: memoryview, span: Span, facts: GraphFacts, depth: int) -> None:
    for number, value in _fields(buf, *span):
        if number == NODE_ATTRIBUTE and isinstance(value, tuple):
            _attribute(buf, value, facts, depth)


def _function(buf: memoryview, span: Span, facts: GraphFacts, depth: int) -> None:
    for number, value in _fields(buf, *span):
        if number == FUNCTION_NODE and isinstance(value, tuple):
            _node(buf, value, facts, depth + 1)
        elif number == FUNCTION_ATTRIBUTE and isinstance(value, tuple):
            _attribute(buf, value, facts, depth + 1)


def _attribute(buf: memoryview, span: Span, facts: GraphFacts, depth: int) -> None:
    for number, value in _fields(buf, *span):
        if not isinstance(value, tuple):
            continue
        if number in (ATTR_T, ATTR_TENSORS):
            _tensor(buf, value, facts)
        elif number in (ATTR_G, ATTR_GRAPHS):
            _graph(buf, value, facts, top=False, depth=depth + 1)
        elif number in (ATTR_SPARSE, ATTR_SPARSES):
            _sparse(buf, value, facts)


def _sparse(buf: memoryview, span: Span, facts: GraphFacts) -> None:
    for number, value in _fields(buf, *span):
        if number in (SPARSE_VALUES, SPARSE_INDICES) and isinstance(value, tuple):
            _tensor(buf, value, facts)


def _tensor(buf: memoryview, span: Span, facts: GraphFacts) -> str:
    """Note the tensor's external-data location, if any; return its name."""
    name, locations, external = "", [], False
    for number, value in _fields(buf, *span):
        if number == TENSOR_NAME:
            name = _text(buf, value)
        elif number == TENSOR_LOCATION:
            external = external or value == EXTERNAL
        elif number == TENSOR_EXTERNAL and isinstance(value, tuple):
            entry = {key: _text(buf, text) for key, text in _fields(buf, *value) if key in (1, 2)}
            external = True
            if entry.get(1) == "location":
                locations.append(entry.get(2, ""))
    if external:
        facts.external.update(locations or [""])  # "" : external data with no location at all
    return name


def _port(buf: memoryview, span: Span) -> Port:
    """ValueInfoProto: name (1), type (2) -> TypeProto.tensor_type (1) -> elem_type (1), shape (2)."""
    name, elem_type, dims = "", 0, None
    for number, value in _fields(buf, *span):
        if number == 1:
            name = _text(buf, value)
        elif number == 2 and isinstance(value, tuple):
            for kind, tensor in _fields(buf, *value):
                if kind == 1 and isinstance(tensor, tuple):
                    elem_type, dims = _tensor_type(buf, tensor)
    return Port(name, elem_type, dims)


def _tensor_type(buf: memoryview, span: Span) -> tuple[int, tuple[int | str | None, ...] | None]:
    elem_type, dims = 0, None
    for number, value in _fields(buf, *span):
        if number == 1 and isinstance(value, int):
            elem_type = value
        elif number == 2 and isinstance(value, tuple):
            dims = tuple(_dimension(buf, dim) for key, dim in _fields(buf, *value)
                         if key == 1 and isinstance(dim, tuple))
    return elem_type, dims


def _dimension(buf: memoryview, span: Span) -> int | str | None:
    for number, value in _fields(buf, *span):
        if number == 1 and isinstance(value, int):
            return value
        if number == 2:
            return _text(buf, value)
    return None
