"""Export to ONNX (PyTorch, onnx): needs the `train` extra, which the plain install leaves out."""

import importlib.util

_MISSING = [name for name in ("torch", "onnx") if importlib.util.find_spec(name) is None]
if _MISSING:
    raise ImportError(
        f"the export package needs {' and '.join(_MISSING)}, which a plain install leaves out: "
        'install captioner[train] (pip install "captioner[train]", or pip install -e ".[train]" '
        "in a checkout)",
        name=_MISSING[0],
    )
