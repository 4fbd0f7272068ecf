"""The ``eqfree`` command, one module per command group (``main`` builds the parser from them).

    eqfree systems
    eqfree simulate --system NAME [--param k=v]... --walkers N --steps N [--dt DT]
                    [--save-every K] --seed S --out PATH.zarr
    eqfree stats PATH.zarr --coord x2 [--discard T]
    eqfree umbrella --system NAME --cv SPEC --grid START:STOP:NUM --kappa K --steps N --walkers W
                    --seed S --out PATH.zarr [--estimator mbar|wham]
    eqfree closure estimate --system NAME --cv SPEC --lift SPEC --grid START:STOP:NUM --burst TAU
                    --walkers W --seed S --out PATH.zarr [--scheduler ADDRESS]
    eqfree closure integrate --closure PATH.zarr --z0 Z --t-end T --seed S --out PATH.zarr [--compare W --png P]
    eqfree project --system NAME --cv SPEC --lift SPEC --z0 Z --t-end T --macro-step D --burst TAU
                    --walkers W --seed S --out PATH.zarr
    eqfree train-lift --data PATH.zarr --cv SPEC --method ccgan|score [--loss hard|soft] [--noise-dim D]
                    [--epochs N] --seed S --out MODEL
    eqfree train-cg [--data PATH.zarr] [--system NAME [--alpha A]] [--latent-dim 2] [--epochs N]
                    [--importance-samples K] --seed S --out MODEL
    eqfree lift --model MODEL --at Z[,Z...] --samples N --seed S --out PATH.zarr
                    [--method assisted --system NAME --kappa K --steps N --walkers W]
    eqfree explore --system NAME --data PATH.zarr --cv SPEC --to Z --step D --kappa K --steps N
                    --seed S --out PATH.zarr [--model MODEL] [--save-model DIR]
    eqfree run RECIPE.toml

Every command takes ``--debug`` (a traceback instead of the one-line message of a mistake).

A CV SPEC is a coordinate (``x1`` or a 0-based index) or the folder of a fitted kernel expansion
(``GeometricHarmonics(...).fit(...).save(DIR)``: a learned diffusion-map coordinate). A lift SPEC
is ``exact`` (the system's known conditional law) or ``umbrella:kappa=K,steps=N`` (umbrella
sampling on the CV).

``alanine_dipeptide`` runs OpenMM: states in nm, times and ``--dt`` in ps, ``--kappa`` in
kJ/mol/rad², ``--cv phi`` or ``psi`` (radians), parameters such as ``--param gb=gbn2``.
"""

from .main import main, parser

__all__ = ["main", "parser"]
