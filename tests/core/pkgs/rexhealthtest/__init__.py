"""A package for the tests of rex.core.health: two checks whose outcome the
test decides (`STATE`), one of which can be held until the test lets it go."""

import threading

from rex.core.health import HealthCheck

STATE = {"pipes": None, "valves": None}  # None: ok, else the error to raise
RUNS = {"pipes": 0, "valves": 0}
RELEASE = threading.Event()  # the valves check waits for it while it is cleared
RELEASE.set()


class PipesHealth(HealthCheck):
    name = "pipes"

    def __call__(self) -> None:
        RUNS["pipes"] += 1
        if STATE["pipes"] is not None:
            raise STATE["pipes"]


class ValvesHealth(HealthCheck):
    name = "valves"

    def __call__(self) -> None:
        RUNS["valves"] += 1
        RELEASE.wait()
        if STATE["valves"] is not None:
            raise STATE["valves"]
