"""A live loss plot for notebooks, fed by the trainer's ``on_step`` / ``on_eval`` callbacks.

Interactive (JupyterLab): an ipywidgets box with a status line and the loss curve, redrawn every few
steps while training runs; its last frame is the final figure. Headless (papermill, ``interactive=False``):
one plain status line every ``print_every`` steps and the final figure — executed notebooks stay small and
readable. Either way the final figure is shown exactly once.

Frames are shown as PNG images (:func:`kit.workshop.notebook.display_png`), not as Figure objects: a Figure is drawn
only when matplotlib's inline backend happens to be set up, and the figures here are made without pyplot,
so nothing is left for the inline backend to show again at the end of the cell.
"""

from __future__ import annotations

import io
import math

__all__ = ["LiveLossPlot"]


class LiveLossPlot:
    """Collects training and validation records and draws them; pass it to ``kit.train.loop.train(callbacks=[...])``."""

    def __init__(self, title: str = "", interactive: bool = True, redraw_every: int = 10, print_every: int = 50):
        self.title = title
        self.interactive = interactive
        self.redraw_every = max(1, redraw_every)
        self.print_every = max(1, print_every)
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.val: list[dict] = []
        self.last: dict = {}
        self._out = self._status = None
        if interactive:
            self._open_widgets()

    # -- callbacks ----------------------------------------------------------------------------
    def on_step(self, record: dict) -> None:
        self.steps.append(int(record["step"]))
        self.losses.append(float(record["loss"]))
        self.last = record
        n = len(self.steps)
        if self.interactive and n % self.redraw_every == 0:
            self._redraw()
        elif not self.interactive and n % self.print_every == 0:
            print(self.status_line())

    def on_eval(self, record: dict) -> None:
        self.val.append({**record, "at_step": self.steps[-1] if self.steps else 0})
        if self.interactive:
            self._redraw()
        else:
            print(self.status_line())

    # -- drawing ------------------------------------------------------------------------------
    def status_line(self) -> str:
        r = self.last
        parts = [f"step {r.get('step', 0)}", f"epoch {r.get('epoch', 0)}", f"loss {r.get('loss', math.nan):.4f}"]
        if "lr" in r:
            parts.append(f"lr {r['lr']:.2e}")
        if "images_per_s" in r:
            parts.append(f"{r['images_per_s']:.0f} img/s")
        if self.val:
            parts.append(f"val top-1 {self.val[-1].get('acc1', math.nan):.2f} %")
        return (f"{self.title}: " if self.title else "") + " · ".join(parts)

    def figure(self):
        """The loss curve (raw, and its moving average) with validation accuracy on a second axis.

        The moving average is :func:`kit.validate.series.moving_average` over ``len // 25`` steps (at least 2).
        A plain Figure (no pyplot): callers show it with :func:`kit.workshop.notebook.show_figure` or :meth:`finish`.
        """
        from matplotlib.figure import Figure

        from kit.validate.series import moving_average

        fig = Figure(figsize=(7, 3.2), layout="constrained")
        ax = fig.add_subplot()
        ax.plot(self.steps, self.losses, color="tab:blue", alpha=0.3, lw=1, label="loss (per step)")
        if len(self.losses) >= 5:
            k = max(2, len(self.losses) // 25)
            ax.plot(self.steps, moving_average(self.losses, k), color="tab:blue", lw=2, label=f"loss (mean of {k})")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        if self.val:
            ax2 = ax.twinx()
            at_steps, acc1 = [v["at_step"] for v in self.val], [v.get("acc1", math.nan) for v in self.val]
            ax2.plot(at_steps, acc1, "o-", color="tab:green", label="val top-1")
            ax2.set_ylabel("val top-1 (%)")
            ax2.set_ylim(0, 100)
            ax2.legend(loc="center right")
        ax.legend(loc="upper right")
        ax.set_title(self.title)
        return fig

    def _open_widgets(self) -> None:
        try:
            import ipywidgets as widgets
            from IPython.display import display
        except ImportError:  # no widgets: fall back to plain output
            self.interactive = False
            return
        self._status = widgets.HTML(value=f"<b>{self.title}</b>: starting ...")
        self._out = widgets.Output()
        display(widgets.VBox([self._status, self._out]))

    def _redraw(self, png: bytes | None = None) -> None:
        from kit.workshop.notebook import display_png

        self._status.value = f"<code>{self.status_line()}</code>"
        if png is None:
            buffer = io.BytesIO()
            # as save_figure does, so the final frame (the saved file) is not a jump in size
            self.figure().savefig(buffer, format="png", dpi=110, bbox_inches="tight")
            png = buffer.getvalue()
        with self._out:
            self._out.clear_output(wait=True)
            display_png(png)

    def finish(self, out_dir=None, name: str | None = None):
        """Final status line and figure; returns the figure.

        With ``out_dir`` and ``name`` the figure is also saved (:func:`kit.workshop.notebook.save_figure`) and shown
        once: interactive, as the widget's last frame (the very file saved); headless, below the status line.
        Without them nothing is shown, and the caller decides what to do with the figure.
        """
        from kit.workshop.notebook import display_png, save_figure

        fig = self.figure()
        png = None
        if out_dir is not None:
            png = save_figure(fig, out_dir, name or self.title or "loss").read_bytes()
        if self.interactive:
            self._redraw(png)
        print(self.status_line())
        if png is not None and not self.interactive:
            display_png(png)
        return fig
