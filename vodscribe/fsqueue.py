"""kombu's filesystem transport with atomic message files, for the embedded (no-server) mode.

kombu writes files in place: a message by creating ``<n>_<uuid>.<queue>.msg`` and then writing into
it, while a consumer moves and reads any such file it lists (it can read one still empty and lose the
message); an exchange's binding table by truncating and rewriting ``<exchange>.exchange``, while a
publisher reads it (it can read it empty and fail to publish). Here every file is written under a
hidden temporary name and renamed into place complete, so readers see the old or the new file whole.
"""

from __future__ import annotations

import fcntl
import uuid
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport.filesystem import Channel as _Channel
from kombu.transport.filesystem import Transport as _Transport
from kombu.transport.filesystem import exchange_queue_t
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps, loads

from vodscribe.atomic import write_atomic

SCHEME = "vodscribefs"


class Channel(_Channel):
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]  # kombu's own
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        write_atomic(Path(self.data_folder_out) / name, str_to_bytes(dumps(payload)), durable=True)

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        self.control_folder.mkdir(exist_ok=True)
        table = self._exchange_file(exchange)
        entry = exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with (self.control_folder / f".{exchange}.lock").open("w") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            queues = self.get_table(exchange)
            if entry in queues:
                return
            write_atomic(table, str_to_bytes(dumps([entry, *queues])), durable=True)

    def get_table(self, exchange: str) -> list[Any]:
        try:
            return [exchange_queue_t(*q) for q in loads(self._exchange_file(exchange).read_bytes())]
        except FileNotFoundError:
            return []


class Transport(_Transport):
    Channel = Channel


TRANSPORT_ALIASES[SCHEME] = f"{__name__}:Transport"
