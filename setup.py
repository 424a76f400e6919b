"""Wheels carry the small bundled data sets (``factorseq/_bundled``), so an installed factorseq
finds them from any folder. Everything else is in pyproject.toml."""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

# the FSDD audio (18 MB) is not shipped: a clone's data/ (or FACTORSEQ_DATA_DIR) serves it
SHIPPED = ("README.md", "timegan", "timevae", "sprites")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the repository's data/ in place
        target = Path(self.build_lib) / "factorseq" / "_bundled"
        for name in SHIPPED:
            src = Path("data") / name
            if src.is_dir():
                shutil.copytree(src, target / name, dirs_exist_ok=True)
            elif src.is_file():
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target / name)


setup(cmdclass={"build_py": BuildWithData})
