"""Packaging beyond what pyproject.toml can say: the resource folders of the checkout travel inside the package.

The code packages (`affectlab`, `dataset_builders`, `custom_models`) are found as usual. The folders that
users also read in a checkout (evaluate metric modules, card templates, recipes, accelerate configs) are
installed as `affectlab/_resources/<kind>`, which `affectlab.paths.resource_dir` reads when there is no
checkout, so `pip install .` (not editable) works from any folder.
"""

from setuptools import find_packages, setup

RESOURCES = {f"affectlab._resources.{kind}": kind for kind in ("metrics", "model_cards", "recipes", "accelerate_configs")}

setup(
    packages=find_packages(include=["affectlab*", "dataset_builders*", "custom_models*"]) + list(RESOURCES),
    package_dir=RESOURCES,
    package_data={
        "": ["*.md", "*.json", "*.yaml", "*.txt"],
        "affectlab._resources.metrics": ["*/*.py", "*/*.md"],
        "affectlab._resources.model_cards": ["*.md"],
        "affectlab._resources.recipes": ["*.yaml", "*/*.yaml"],
        "affectlab._resources.accelerate_configs": ["*.yaml"],
    },
)
