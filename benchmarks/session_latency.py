"""`trialctl record dose` as a whole process, with and without a signed-in session.

With a session the figure is the whole `record dose` process handing its line to the
agent; without one it is the same command minus the key derivation (scrypt), which is
timed alone and subtracted. Run: python -m benchmarks.session_latency [--doses N]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.measure import trialctl_command, warm_bytecode_env
from trialctl.ledger.demo import demo_password, run_demo
from trialctl.ledger.keys import open_key_file

SIGNER = "ivan"
PATIENT = "P006"  # the demo's patient whose course 2 is still to be dosed
COURSE = 2


def _dose(day: int) -> list[str]:
    # Day N of the course falls N - 1 days after its first dose, which is a month ago: the
    # demo dates its story from the day it is built, so only dates relative to today are
    # sure to fall after the patient's consent and not in the future.
    first = datetime.now(UTC).replace(hour=9, minute=30, second=0, microsecond=0)
    at = first - timedelta(days=30) + timedelta(days=day - 1)
    return ["record", "dose", PATIENT, "--agent", "imatinib mesylate", "--dose", "400",
            "--unit", "mg/day", "--course", str(COURSE), "--day", str(day),
            "--at", at.isoformat(), "-u", SIGNER, "--password-stdin"]


def _timed(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([*trialctl_command(), *args], input=demo_password(SIGNER) + "\n",
                   capture_output=True, text=True, check=True, timeout=300, env=env)
    return time.perf_counter() - start


def _kdf_seconds(home: Path, repeats: int = 3) -> float:
    path = next((home / "keys" / SIGNER).glob("*.json"))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        open_key_file(path, demo_password(SIGNER))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(doses: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="trialctl-session-bench-") as name:
        directory = Path(name)
        run_demo(directory)
        runtime = directory / "run"
        runtime.mkdir(mode=0o700)
        env = {**warm_bytecode_env(directory / "pycache"),
               "TRIALCTL_HOME": str(directory / "home"),
               "TRIALCTL_LEDGER": str(directory / "demo.sqlite"),
               "XDG_RUNTIME_DIR": str(runtime)}
        plain = [_timed(_dose(day), env) for day in range(1, doses + 1)]
        kdf = _kdf_seconds(directory / "home")
        started = subprocess.run(
            [*trialctl_command(), "session", "start", "--idle", "1h", "--max", "2h", "--json",
             "-u", SIGNER, "--password-stdin"], input=demo_password(SIGNER) + "\n",
            capture_output=True, text=True, check=True, env=env)
        pid = json.loads(started.stdout)["pid"]
        try:
            session = [_timed(_dose(day), env) for day in range(doses + 1, 2 * doses + 1)]
        finally:
            subprocess.run([*trialctl_command(), "session", "stop", "-u", SIGNER],
                           capture_output=True, env=env)
            time.sleep(0.5)
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGTERM)
    return {"doses_each": doses, "kdf_s": kdf,
            "without_session_median_s": statistics.median(plain),
            "without_session_minus_kdf_s": statistics.median(plain) - kdf,
            "session_median_s": statistics.median(session),
            "session_min_s": min(session), "session_max_s": max(session)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--doses", type=int, default=7, help="doses timed in each mode")
    figures = measure(parser.parse_args().doses)
    print(json.dumps(figures, indent=2))
    print(f"figure 6: within a session {figures['session_median_s'] * 1000:.0f} ms median "
          f"(target <= 150 ms); without one, excluding the KDF, "
          f"{figures['without_session_minus_kdf_s']:.2f} s (target <= 1.0 s)")


if __name__ == "__main__":
    main()
