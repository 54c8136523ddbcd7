"""A small DAG run by the real stardag 0.28.0 SDK (registry v2). ``UI_RUN_ID`` salts
the task ids."""

import os

import stardag as sd

RUN = os.environ.get("UI_RUN_ID", "run")


class Source(sd.Task[int]):
    run_id: str
    value: int

    def run(self):
        self._save(self.value)


class Total(sd.Task[int]):
    left: sd.TaskLoads[int]
    right: sd.TaskLoads[int]

    def requires(self):
        return [self.left, self.right]

    def run(self):
        self._save(self.left.load() + self.right.load())


if __name__ == "__main__":
    sd.build(Total(left=Source(run_id=RUN, value=1), right=Source(run_id=RUN, value=2)))
    print("built")
