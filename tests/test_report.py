"""report.py on hand-made runs over a tiny GSM8k (8 questions, candidates A and B)."""
import json

import numpy as np
import pytest

import candidates
import cost_curves
import metrics
import report
from utils import plots
from data import load_benchmark
from synthetic import CANDIDATES, write_synthetic_data
from utils.io import DataError

# A answers question n correctly when n is even, B when n is odd: each fixed candidate scores 50%.
ORACLE_SCORES = [[1.0, 0.0] if n % 2 == 0 else [0.0, 1.0] for n in range(8)]


@pytest.fixture()
def data_dir(tmp_path):
    return write_synthetic_data(tmp_path / "data")


@pytest.fixture()
def config(tmp_path):
    path = tmp_path / "candidates.yaml"
    path.write_text("candidates:\n"
                    "  - {name: A, input_price_per_million: 1, output_price_per_million: 1}\n"
                    "  - {name: B, input_price_per_million: 1, output_price_per_million: 10}\n")
    return path


def write_run(folder, data_dir, router_scores, settings_file: str, settings: dict, candidates=CANDIDATES):
    """A finished run: settings, metrics.json (metrics.evaluate of the argmax routing) and test predictions."""
    folder.mkdir(parents=True)
    (folder / settings_file).write_text(json.dumps({"candidate_llms": candidates, "data_dir": str(data_dir),
                                                    **settings}))
    records = load_benchmark("GSM8k", data_dir, CANDIDATES)
    choices = np.argmax(router_scores, axis=1)
    summary = metrics.summarize({"GSM8k": metrics.evaluate("GSM8k", records, choices, candidate_names=CANDIDATES)})
    (folder / "metrics.json").write_text(json.dumps(summary))
    (folder / "test_predictions").mkdir()
    rows = [{"prompt_id": r["prompt_id"], "router_scores": s, "choice": int(c)}
            for r, s, c in zip(records, router_scores, choices)]
    (folder / "test_predictions" / "GSM8k.json").write_text(json.dumps(rows))
    return folder


def test_report_tables_curves_and_plots(tmp_path, data_dir, config):
    baseline = write_run(tmp_path / "knn", data_dir, ORACLE_SCORES, "run_args.json",
                         {"run_name": "knn", "router_type": "knn"})
    fixed = write_run(tmp_path / "fixed_1", data_dir, [[0.0, 1.0]] * 8, "run_args.json",
                      {"run_name": "fixed: B", "router_type": "fixed"})
    trained = write_run(tmp_path / "lookahead", data_dir, [[2 * a, 2 * b] for a, b in ORACLE_SCORES],
                        "run_args.json", {"stage": "mask_concat", "loss_type": "CE", "run_name": None,
                                          "output_dir": str(tmp_path / "lookahead")})
    folds = {"fold_0": [{"step": 1, "loss": 0.9}, {"step": 2, "loss": 0.7}, {"step": 2, "eval_reward": 0.4}],
             "fold_1": [{"step": 1, "loss": 0.8}, {"step": 2, "eval_reward": 0.5}]}
    for fold, history in folds.items():  # what the Trainer saves in each fold of a cross-fit run
        (trained / fold).mkdir()
        (trained / fold / "trainer_state.json").write_text(json.dumps({"log_history": history}))

    out = tmp_path / "report"
    path = report.write_report([baseline, fixed, trained], out, config)
    text = path.read_text()
    assert "| knn | 100.00 |" in text and "| fixed: B | 50.00 |" in text and "| lookahead | 100.00 |" in text
    assert "GSM8k: accuracy, correct (1/0))" in text  # the registry's words for the headline and the routing score

    # Costs (per 1,000 queries): the answers have 1 character (0.25 tokens): A costs in + 0.25, B in + 2.5.
    # The zero router's hull is flat at 50 (A is cheaper and as good). The routers reach 100% at the mean
    # cost in + 1.375 and 50% at A's cost: AIQ = (1.125 x 75 + 1.125 x 100) / 2.25 = 87.5 (both routers).
    assert "| zero router (fixed candidates) | 50.00 |" in text
    assert "| knn | 87.50 |" in text and "| lookahead | 87.50 |" in text
    assert "| fixed: B |" not in text.split("### AIQ")[1]  # a fixed candidate is a point, not a curve
    assert "| knn | – |" in text  # APGR needs a quality gap between the strong and the weak candidate

    saved = json.loads((out / "cost_analysis.json").read_text())
    records = load_benchmark("GSM8k", data_dir, CANDIDATES)
    prices = [candidates.Price(1.0, 1.0), candidates.Price(1.0, 10.0)]
    direct = cost_curves.benchmark_cost_analysis(cost_curves.benchmark_headline("GSM8k", records), records,
                                                 np.array(ORACLE_SCORES), "identity", prices)
    assert saved["benchmarks"]["GSM8k"]["runs"]["knn"] == json.loads(json.dumps(direct))
    assert saved["benchmarks"]["GSM8k"]["pair"] == {"strong": "A", "weak": "B"}
    assert saved["prices"] == {"A": {"input_per_million": 1.0, "output_per_million": 1.0},
                               "B": {"input_per_million": 1.0, "output_per_million": 10.0}}

    for image in ("quality_cost.png", "routing_distribution.png", "training_curves.png"):
        assert (out / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / image).stat().st_size > 10_000
        assert f"]({image})" in text
    histories = plots.run_histories(trained, report.load_run(trained).name)
    assert histories == {"lookahead fold_0": folds["fold_0"], "lookahead fold_1": folds["fold_1"]}


def test_report_refuses_runs_it_cannot_compare(tmp_path, data_dir, config):
    knn = write_run(tmp_path / "knn", data_dir, ORACLE_SCORES, "run_args.json", {"run_name": "knn", "router_type": "knn"})
    other = write_run(tmp_path / "other", data_dir, ORACLE_SCORES, "run_args.json",
                      {"run_name": "other", "router_type": "knn"}, candidates=["B", "A"])
    with pytest.raises(DataError, match="same candidates"):
        report.write_report([knn, other], tmp_path / "out", config)
    twin = write_run(tmp_path / "twin", data_dir, ORACLE_SCORES, "run_args.json",
                     {"run_name": "knn", "router_type": "knn"})
    with pytest.raises(DataError, match="share a name"):
        report.write_report([knn, twin], tmp_path / "out", config)
    with pytest.raises(DataError, match="not a finished run"):
        report.write_report([tmp_path], tmp_path / "out", config)
    rows = json.loads((knn / "test_predictions" / "GSM8k.json").read_text())
    (knn / "test_predictions" / "GSM8k.json").write_text(json.dumps(rows[1:]))
    with pytest.raises(DataError, match="no prediction for prompt_id '0'"):
        report.write_report([knn], tmp_path / "out", config)
