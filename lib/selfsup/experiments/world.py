"""The course's ToyWorld: the one world every shared model, chapter and exercise speaks about.

Its own module, importing nothing but the generator, so that a model's cache key (which covers every selfsup
module its code imports) does not change when unrelated training code does.
"""

from __future__ import annotations

import functools

from selfsup.data.toyworld import ToyWorld

TOY_WORLD_SEED = 0


@functools.cache
def toy_world() -> ToyWorld:
    """The course's ToyWorld (seed 0, 100 people)."""
    return ToyWorld(seed=TOY_WORLD_SEED, n_people=100)
