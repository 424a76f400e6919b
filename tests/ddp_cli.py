"""``python ddp_cli.py ARGS``: the factorseq command line plus a tiny registered data set with
domains, ``tiny-domains``. DDP tests run it as a subprocess; Lightning's launcher runs this
script again in every extra process, which registers the set there too."""
from __future__ import annotations

import sys

import numpy as np

from factorseq.cli import main
from factorseq.data.container import SequenceData
from factorseq.data.registry import dataset


@dataset("tiny-domains", description="3 classes of sine frequency; target shifted",
         citation="synthetic", licence="synthetic", scaler="standard")
def tiny_domains(cfg) -> SequenceData:
    rng = np.random.default_rng(0)
    y = np.tile(np.arange(3), 40)
    domain = (np.arange(len(y)) >= 80).astype(np.int64)
    t = np.arange(8)
    x = np.sin((0.4 + 0.5 * y[:, None, None]) * t[None, :, None]
               + rng.uniform(0, 3, (len(y), 1, 2)))
    x = np.where(domain[:, None, None] == 1, 1.5 * x + 0.8, x)
    return SequenceData(x=x.astype(np.float32), y=y, domain=domain,
                        meta={"n_classes": 3, "target_speaker": "t"}, name="tiny-domains")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
