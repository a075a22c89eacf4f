"""One progress line per stage of a long pipeline (run.py, ablate.py), with the time elapsed and, where the
pipeline gives its stages' planned minutes, an estimate of the time left."""

import time
from typing import Optional, Sequence


class Progress:
    def __init__(self, stages: int, planned_minutes: Optional[Sequence[float]] = None):
        if planned_minutes is not None and len(planned_minutes) != stages:
            raise ValueError(f"{len(planned_minutes)} planned durations for {stages} stages")
        self.stages = stages
        self.planned = planned_minutes
        self.start = time.time()

    def stage(self, number: int, text: str) -> None:
        minutes = (time.time() - self.start) / 60
        left = f", about {self.minutes_left(number):.0f} min left" if self.planned else ""
        print(f"== [{number}/{self.stages}] {text} ({minutes:.1f} min elapsed{left})", flush=True)

    def minutes_left(self, number: int) -> float:
        """The planned minutes of stage NUMBER (starting now) and of every later one."""
        return sum(self.planned[number - 1:])
