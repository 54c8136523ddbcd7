"""A three-task diamond-ish DAG run by the real stardag 0.1.0 SDK (the browser suite
watches it arrive and turn green). ``UI_RUN_ID`` salts the task ids."""

import os
import time

import stardag as sd

RUN = os.environ.get("UI_RUN_ID", "run")
SLEEP = float(os.environ.get("UI_SLEEP", "1.5"))


class Source(sd.AutoTask[int]):
    run_id: str
    value: int

    def run(self):
        time.sleep(SLEEP)
        self.output().save(self.value)


class Total(sd.AutoTask[int]):
    left: sd.TaskLoads[int]
    right: sd.TaskLoads[int]

    def requires(self):
        return [self.left, self.right]

    def run(self):
        time.sleep(SLEEP)
        self.output().save(self.left.output().load() + self.right.output().load())


if __name__ == "__main__":
    sd.build(Total(left=Source(run_id=RUN, value=1), right=Source(run_id=RUN, value=2)))
    print("built")
