"""Training-curve plots: where the log history is read from, and the PNG written for a run and its folds."""
import json
import struct

from utils.plots import PLOT_NAME, load_log_history, plot_run, plot_training_curves, series

HISTORY = [
    {"step": 1, "loss": 3.0, "routing_loss": 1.0, "mlm_loss": 2.0, "mask_rate": 0.5, "reward": 0.25},
    {"step": 1, "eval_loss": 0.9, "eval_routing_loss": 0.9, "eval_reward": 0.5},
    {"step": 2, "loss": 2.5, "routing_loss": 0.8, "mlm_loss": 1.7, "mask_rate": 1.0, "reward": 0.75},
    {"step": 2, "eval_loss": 0.7, "eval_routing_loss": 0.7, "eval_reward": 0.625},
    {"step": 2, "train_runtime": 1.0, "train_loss": 2.75},
]


def write_state(folder, history):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 2, "log_history": history}))


def png_size(path):
    """(width, height) from a PNG file's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_series_keeps_the_entries_that_logged_the_key():
    assert series(HISTORY, "loss") == ([1, 2], [3.0, 2.5])
    assert series(HISTORY, "eval_reward") == ([1, 2], [0.5, 0.625])
    assert series(HISTORY, "sft_loss") == ([], [])


def test_log_history_prefers_the_run_state_then_the_latest_checkpoint(tmp_path):
    assert load_log_history(tmp_path) is None
    write_state(tmp_path / "checkpoint-9", HISTORY[:1])
    write_state(tmp_path / "checkpoint-10", HISTORY[:2])  # numerically later than checkpoint-9
    assert load_log_history(tmp_path) == HISTORY[:2]
    write_state(tmp_path, HISTORY)
    assert load_log_history(tmp_path) == HISTORY


def test_plot_run_draws_a_run_and_its_folds(tmp_path):
    single = tmp_path / "single"
    assert plot_run(single) is None  # nothing logged yet: nothing drawn
    write_state(single, HISTORY)
    assert plot_run(single) == single / PLOT_NAME
    assert png_size(single / PLOT_NAME) == (1100, 750)

    cross_fit = tmp_path / "cross_fit"
    write_state(cross_fit / "fold_0", HISTORY)
    write_state(cross_fit / "fold_1" / "checkpoint-1", HISTORY[:2])  # a fold still training
    assert plot_run(cross_fit) == cross_fit / PLOT_NAME
    assert png_size(cross_fit / PLOT_NAME) == (1100, 750)
    assert sorted(path.name for path in cross_fit.iterdir()) == ["fold_0", "fold_1", PLOT_NAME]  # no temporary left


def test_each_panel_compares_like_with_like():
    """The validation curve beside a training curve is the same quantity: eval_routing_loss beside routing_loss,
    never the total training loss (routing + MLM) beside the validation routing loss."""
    from utils.plots import PANELS
    panels = {title: (train, evaluation) for title, train, evaluation in PANELS}
    assert panels["routing loss"] == (("routing_loss",), ("eval_routing_loss",))
    assert panels["training loss (routing + auxiliary)"] == (("loss",), ())
    assert panels["reward"] == (("reward",), ("eval_reward",))
    for train, evaluation in panels.values():
        assert all(key == f"eval_{train_key}" for key, train_key in zip(evaluation, train))


def test_the_panels_draw_the_logged_values(tmp_path, monkeypatch):
    """What is drawn, read back from the figure: each panel's curves hold the logged (step, value) pairs."""
    import matplotlib.pyplot as plt

    from utils import plots

    figures = []
    monkeypatch.setattr(plots.plt, "close", lambda figure: figures.append(figure))
    write_state(tmp_path / "run" / "fold_0", HISTORY)
    write_state(tmp_path / "run" / "fold_1", HISTORY[:2])
    plot_run(tmp_path / "run")
    (figure,) = figures
    drawn = {}
    for axis in figure.axes:
        for line in axis.get_lines():
            drawn[(axis.get_title() or "mask rate", line.get_label())] = (list(line.get_xdata()),
                                                                        list(line.get_ydata()))
    plt.close(figure)
    assert drawn == {
        ("routing loss", "run fold_0: routing_loss"): ([1, 2], [1.0, 0.8]),
        ("routing loss", "run fold_0: eval_routing_loss"): ([1, 2], [0.9, 0.7]),
        ("routing loss", "run fold_1: routing_loss"): ([1], [1.0]),
        ("routing loss", "run fold_1: eval_routing_loss"): ([1], [0.9]),
        ("training loss (routing + auxiliary)", "run fold_0: loss"): ([1, 2], [3.0, 2.5]),
        ("training loss (routing + auxiliary)", "run fold_1: loss"): ([1], [3.0]),
        ("auxiliary loss", "run fold_0: mlm_loss"): ([1, 2], [2.0, 1.7]),
        ("auxiliary loss", "run fold_1: mlm_loss"): ([1], [2.0]),
        ("mask rate", "run fold_0: mask_rate"): ([1, 2], [0.5, 1.0]),
        ("mask rate", "run fold_1: mask_rate"): ([1], [0.5]),
        ("reward", "run fold_0: reward"): ([1, 2], [0.25, 0.75]),
        ("reward", "run fold_0: eval_reward"): ([1, 2], [0.5, 0.625]),
        ("reward", "run fold_1: reward"): ([1], [0.25]),
        ("reward", "run fold_1: eval_reward"): ([1], [0.5]),
    }


def test_a_plot_leaves_another_writers_temporary_file_alone(tmp_path):
    """Two fold processes plot into the same run folder at once: one's temporary file must not be the other's (the
    name a fixed temporary would have had is taken here by the other writer's half-written file)."""
    other = tmp_path / f".{PLOT_NAME}.tmp.png"
    other.write_bytes(b"the other writer's bytes")
    path = plot_training_curves({"run": HISTORY}, tmp_path / PLOT_NAME)
    assert other.read_bytes() == b"the other writer's bytes"
    assert png_size(path)[0] > 0 and sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, PLOT_NAME])
