"""The embedded queue never hands a consumer a half-written message (kombu's filesystem transport can)."""

from __future__ import annotations

import threading
from pathlib import Path

from kombu import Connection

import vodscribe.fsqueue  # noqa: F401  (registers the transport)


def _roundtrip(scheme: str, folder: Path, count: int = 150) -> list[int]:
    for sub in ("q", "done"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    options = {
        "data_folder_in": str(folder / "q"),
        "data_folder_out": str(folder / "q"),
        "processed_folder": str(folder / "done"),
        "control_folder": str(folder / "q"),
        "polling_interval": 0.01,
    }
    pad = "x" * 400_000  # big enough that writing a file takes a while
    with Connection(f"{scheme}://", transport_options=options) as conn:
        conn.SimpleQueue("stress").close()  # declared up front, as the app does when it starts

    def produce() -> None:
        with Connection(f"{scheme}://", transport_options=options) as conn:
            queue = conn.SimpleQueue("stress")
            for i in range(count):
                queue.put({"i": i, "pad": pad})

    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            produce()
        except BaseException as exc:  # a publish that failed (e.g. read a torn binding table)
            errors.append(exc)

    producer = threading.Thread(target=guarded)
    producer.start()
    got: list[int] = []
    with Connection(f"{scheme}://", transport_options=options) as conn:
        queue = conn.SimpleQueue("stress")
        while len(got) < count:
            try:
                message = queue.get(timeout=5)
            except queue.Empty:
                break
            except Exception:  # a half-written file: undecodable, and gone from the queue
                continue
            got.append(message.payload["i"])
            message.ack()
    producer.join()
    return got if not errors else [-1]


def test_no_message_is_lost_or_torn(tmp_path: Path) -> None:
    assert sorted(_roundtrip("vodscribefs", tmp_path)) == list(range(150))
