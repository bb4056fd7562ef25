"""Only what pyproject.toml cannot say: the default model bundle travels in the wheel.

The bundle stays in one place in the repository, `models/default/`. It is installed as the
package data of `captioner_models` (a package whose folder is `models/`), beside `captioner` in
site-packages, where `captioner.default_model` finds it. Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["captioner*", "gui*", "training*", "export*"]),
              "captioner_models", "captioner_models.default"],
    package_dir={"captioner_models": "models"},
    package_data={"captioner_models.default": ["*"]},  # every file of models/default
)
