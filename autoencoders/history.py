"""The record of a training run: :class:`History`.

:func:`~autoencoders.train.fit` returns one; its per-epoch means can be read
(``history.train['elbo']``, ``history.last('elbo')``), printed as a table and plotted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["History"]


@dataclass
class History:
    """Per-epoch record of a :func:`~autoencoders.train.fit` run.

    Attributes
    ----------
    train : dict of str to list of float
        Per-epoch means of every training diagnostic (weighted by batch size), e.g.
        ``train['elbo'][-1]``. With a ``beta_schedule`` it also holds ``'beta'``, the
        mean :math:`\\beta` of the epoch, and with a ``scheduler`` ``'lr'``, the mean
        learning rate of the epoch.
    eval : dict of str to list of float
        Results of :func:`~autoencoders.train.evaluate` on ``eval_data`` after every
        epoch, under the same names as in ``train`` (``eval['elbo']``). Empty without
        ``eval_data``.
    epoch_time : list of float
        Wall-clock seconds of each epoch's training pass (evaluation excluded).
    steps : int
        Optimizer steps taken.
    device : str or None
        Where :func:`~autoencoders.train.fit` trained (``'cpu'``, ``'cuda:0'``), so
        that a run on the wrong device can be noticed and tested.

    :meth:`last` reads ``train`` by default; ``last(name, split='eval')`` (or the
    name with an ``eval_`` prefix) reads ``eval``.
    """

    train: dict[str, list[float]] = field(default_factory=dict)
    eval: dict[str, list[float]] = field(default_factory=dict)
    epoch_time: list[float] = field(default_factory=list)
    steps: int = 0
    device: str | None = None

    def __len__(self) -> int:
        """Number of completed epochs."""
        return len(self.epoch_time)

    def last(self, name: str, split: str = "train") -> float:
        """Latest value of ``name`` in ``split`` (``'train'`` or ``'eval'``).

        A name with the prefix ``eval_`` (``'eval_elbo'``) reads ``eval``.

        Raises
        ------
        ValueError
            If ``split`` is neither ``'train'`` nor ``'eval'``.
        KeyError
            If ``name`` was never recorded; the message lists the recorded names.
        """
        if split not in ("train", "eval"):
            raise ValueError(f"split must be 'train' or 'eval', got {split!r}")
        if name.startswith("eval_") and name not in self.train:
            split, name = "eval", name.removeprefix("eval_")
        table = self.train if split == "train" else self.eval
        if name in table and table[name]:
            return table[name][-1]
        raise KeyError(f"no {split} values recorded for {name!r}; recorded names: {self._names()}")

    def _names(self) -> list[str]:
        """Column names: the training diagnostics, then ``eval_``-prefixed evaluation ones."""
        return [*self.train, *(f"eval_{k}" for k in self.eval)]

    def _column(self, name: str) -> list[float]:
        if name.startswith("eval_") and name not in self.train:
            return self.eval[name.removeprefix("eval_")]
        return self.train[name]

    def as_table(self, max_rows: int | None = None) -> str:
        """The history as a fixed-width text table, one row per epoch.

        Parameters
        ----------
        max_rows : int, optional
            Show at most this many epochs (the first and last ones, with ``...``
            between them).
        """
        names = self._names()
        header = ["epoch", *names, "time_s"]
        rows = []
        for i in range(len(self)):
            values = [self._column(n) for n in names]
            cells = [f"{v[i]:.4g}" if i < len(v) else "" for v in values]
            rows.append([str(i + 1), *cells, f"{self.epoch_time[i]:.2f}"])
        if max_rows is not None and len(rows) > max_rows:
            head = max(1, max_rows // 2)
            rows = rows[:head] + [["..."] * len(header)] + rows[-(max_rows - head) :]
        widths = [max(len(h), *(len(r[j]) for r in rows)) if rows else len(h) for j, h in enumerate(header)]
        lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
        lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
        return "\n".join(lines)

    def __repr__(self) -> str:
        title = f"History(epochs={len(self)}, steps={self.steps})"
        return title if not len(self) else f"{title}\n{self.as_table(max_rows=10)}"

    def plot(self, keys: str | Sequence[str] | None = None, ax=None):
        """Draw the learning curves: training solid with dots, evaluation dashed with
        open squares (and, one panel per key, in a second colour).

        Parameters
        ----------
        keys : str or sequence of str, optional
            Diagnostic names, with or without the ``eval_`` prefix (``'elbo'`` draws
            ``train['elbo']`` and ``eval['elbo']`` when present). Default: every
            recorded name.
        ax : matplotlib.axes.Axes, optional
            Draw every curve into this axes. Without it, a new figure gets one panel
            per key, so that quantities of different scales stay readable.

        Returns
        -------
        matplotlib.figure.Figure

        Raises
        ------
        ValueError
            If nothing was recorded or a key is unknown.
        """
        if not len(self):
            raise ValueError("the history is empty: nothing to plot")
        available = list(dict.fromkeys([*self.train, *self.eval]))
        if keys is None:
            wanted = available
        else:
            wanted = [keys] if isinstance(keys, str) else list(keys)
            wanted = [k.removeprefix("eval_") for k in wanted]
            unknown = [k for k in wanted if k not in available]
            if unknown or not wanted:
                raise ValueError(f"keys must be among {available}, got {keys!r}")
        from matplotlib.ticker import MaxNLocator

        if ax is None:
            import matplotlib.pyplot as plt

            width = min(7.0, 3.5 * len(wanted))  # the book's column is about 7 inches
            fig, grid = plt.subplots(
                1, len(wanted), figsize=(width, 3.2), squeeze=False, layout="constrained"
            )
            axes = list(grid[0])
        else:
            fig, axes = ax.figure, [ax] * len(wanted)
        # one key per panel: train and eval differ in colour as well as in style
        single = ax is None or len(wanted) == 1
        for i, (key, target) in enumerate(zip(wanted, axes)):
            for label, values, style in (
                ("train", self.train.get(key), {"linestyle": "-", "marker": "o"}),
                ("eval", self.eval.get(key), {"linestyle": "--", "marker": "s", "mfc": "none"}),
            ):
                if values:
                    epochs = range(1, len(values) + 1)
                    color = f"C{(0 if label == 'train' else 1) if single else i}"
                    name = label if single else f"{label} {key}"
                    target.plot(epochs, values, color=color, markersize=4, label=name, **style)
            target.set_xlabel("epoch")
            target.xaxis.set_major_locator(MaxNLocator(integer=True))
            target.set_ylabel(key if single or len(wanted) == 1 else "value")
            target.legend()
        return fig
