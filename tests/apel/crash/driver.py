"""Start (or resume) runs r0..r{N-1} of fulfil.apel against a store; killed at random by
the test. Usage: driver.py STORE_URL N LEASE_S"""

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from geomir.apel import load  # noqa: E402
from geomir.apel.engine import Engine, Limits, RunError  # noqa: E402
from geomir.apel.store import open_store  # noqa: E402
from geomir.apel.tracing import Tracer  # noqa: E402


def main(url: str, n: int, lease: float, trace: str) -> None:
    program = load(HERE / "fulfil.apel")
    with open_store(url) as store:
        engine = Engine(program, store, tracer=Tracer(trace), limits=Limits(lease_s=lease))
        for i in range(n):
            run_id = f"r{i}"
            record = store.get_run(run_id)
            if record is None:
                engine.start({"o": {"id": i, "amount": 10.0 + i}}, run_id=run_id, correlation_id=f"order-{i}")
                continue
            while record.status in ("running", "waiting"):
                try:
                    engine.resume(run_id)
                except RunError:  # the killed worker's lease has not expired yet
                    time.sleep(lease / 4)
                record = store.get_run(run_id)
        print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4])
