"""One progress line per stage of a long pipeline (run.py, ablate.py), with the time elapsed."""

import time


class Progress:
    def __init__(self, stages: int):
        self.stages = stages
        self.start = time.time()

    def stage(self, number: int, text: str) -> None:
        minutes = (time.time() - self.start) / 60
        print(f"== [{number}/{self.stages}] {text} ({minutes:.1f} min elapsed)", flush=True)
