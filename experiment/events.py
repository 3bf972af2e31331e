"""TensorBoard event files of a run's training phases, one directory per phase (RUN_DIR/tb/PHASE), written
with tensorboardX (protobuf and numpy only: no TensorFlow, no PyTorch), and a reader for them.

log.jsonl is the record; the event files mirror it. A phase's writer starts by deleting the phase's event
directory and writing back the log lines that survived a resume (those up to the checkpoint it resumes
from), then appends live: a resumed or killed run never leaves a duplicated or stale point in TensorBoard."""

import shutil
import struct
from pathlib import Path

from tensorboardX import SummaryWriter
from tensorboardX.proto import event_pb2

NOT_SCALARS = ("phase", "step", "pretrained")


def phase_dir(run_dir: Path, phase: str) -> Path:
    return run_dir / "tb" / phase


class PhaseEvents:
    """A writer of one phase's scalars, started afresh from the phase's `records` (log.jsonl lines)."""

    def __init__(self, directory: Path, records: list[dict]):
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        self.writer = SummaryWriter(str(directory), flush_secs=30)
        for record in records:
            self.add(record)
        self.writer.flush()

    def add(self, record: dict) -> None:
        """Every number of one log line, each under its own key as the tag."""
        for tag, value in record.items():
            if tag not in NOT_SCALARS:
                self.writer.add_scalar(tag, value, record["step"])

    def close(self) -> None:
        self.writer.close()


def read_scalars(directory: Path) -> dict[str, list[tuple[int, float]]]:
    """Tag -> [(step, value)] in file order, from every event file in `directory`; checks each record's
    length (TFRecord framing) so that a truncated or foreign file is an error, not silently short."""
    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(directory.glob("events.out.tfevents.*")):
        data, at = path.read_bytes(), 0
        while at < len(data):
            if at + 12 > len(data):
                raise ValueError(f"{path} is cut short at byte {at}")
            (length,) = struct.unpack_from("<Q", data, at)
            body = data[at + 12 : at + 12 + length]  # 8 bytes length, 4 its CRC, the record, 4 its CRC
            if len(body) != length or at + 16 + length > len(data):
                raise ValueError(f"{path} is cut short at byte {at}")
            at += 16 + length
            event = event_pb2.Event.FromString(body)
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars
