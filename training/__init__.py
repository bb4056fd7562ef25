"""Training (PyTorch): needs the `train` extra, which the plain install leaves out."""

import importlib.util

if importlib.util.find_spec("torch") is None:
    raise ImportError(
        "the training package needs PyTorch, which a plain install leaves out: "
        'install captioner[train] (pip install "captioner[train]", or pip install -e ".[train]" '
        "in a checkout)",
        name="torch",
    )
