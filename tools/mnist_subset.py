"""Write the MNIST data root that the tests and the book builds expect.

The machines that build and test this project are offline and read a fixed copy of
MNIST in torchvision's layout (``../shared/data``): the first 19,690 images of the
official training set and the complete 10,000-image test set. The tests check those
counts, so a CI runner with internet access must not simply download the full set:
this script downloads it with torchvision (or reads an existing data root) and writes
exactly that copy, then checks every file against the MD5 sums of the offline copy.

    python tools/mnist_subset.py DEST                 # download, then cut
    python tools/mnist_subset.py DEST --source ROOT   # cut an existing data root

``DEST`` is a data root: point ``AUTOENCODERS_DATA`` at it. The GitHub workflows in
``.github/workflows`` use this script to restore the data root once and cache it.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

TRAIN_IMAGES = 19_690  # the first images of the official training set
SIDE = 28

# MD5 of the uncompressed files of the offline copy (see ../shared/data/README.md).
MD5 = {
    "train-images-idx3-ubyte": "6e811c47dcebe5c72db9a324bbd252f3",
    "train-labels-idx1-ubyte": "dc86f6c78cc0fcabb62fefa8c6767d82",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
_MAGIC = {"images": 2051, "labels": 2049}


def cut_idx(source: Path, dest: Path, count: int | None) -> int:
    """Copy the first ``count`` records of an MNIST IDX file (all when ``None``).

    The header's record count is rewritten to the number copied. Returns that number.
    """
    data = source.read_bytes()
    images = int.from_bytes(data[:4], "big") == _MAGIC["images"]
    if not images and int.from_bytes(data[:4], "big") != _MAGIC["labels"]:
        raise ValueError(f"{source} is not an MNIST IDX file (magic {data[:4].hex()})")
    header = 16 if images else 8
    record = SIDE * SIDE if images else 1
    available = int.from_bytes(data[4:8], "big")
    if len(data) != header + available * record:
        raise ValueError(f"{source}: {len(data)} bytes, its header implies {available} records")
    n = available if count is None else count
    if n > available:
        raise ValueError(f"{source} holds {available} records, {n} were asked for")
    out = data[:4] + n.to_bytes(4, "big") + data[8:header] + data[header : header + n * record]
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(out)
    return n


def write_subset(source_root: Path, dest_root: Path, *, check: bool = True) -> list[Path]:
    """Write the offline copy under ``dest_root/MNIST/raw`` from a full (or the same)
    data root; with ``check``, verify the MD5 sums. Returns the files written."""
    src, dst = source_root / "MNIST" / "raw", dest_root / "MNIST" / "raw"
    written = []
    for name in MD5:
        count = TRAIN_IMAGES if name.startswith("train") else None
        cut_idx(src / name, dst / name, count)
        written.append(dst / name)
    if check:
        wrong = [
            path.name
            for path in written
            if hashlib.md5(path.read_bytes()).hexdigest() != MD5[path.name]
        ]
        if wrong:
            raise ValueError(f"{wrong} differ from the offline copy (MD5); wrong source?")
    return written


def download(root: Path) -> None:
    """Download both official splits into ``root`` with torchvision."""
    from torchvision.datasets import MNIST

    for train in (True, False):
        MNIST(str(root), train=train, download=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=Path, help="data root to write (AUTOENCODERS_DATA)")
    parser.add_argument("--source", type=Path, help="existing data root (default: download)")
    args = parser.parse_args(argv)
    if args.source is not None:
        files = write_subset(args.source, args.dest)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            download(Path(tmp))
            files = write_subset(Path(tmp), args.dest)
    for path in files:
        print(f"{path} ({path.stat().st_size} bytes, MD5 checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
