"""Record packs (data.packs): a benchmark read from its pack equals the benchmark read from its native files."""
import json

from data import load_benchmark, load_train_set
from data.packs import write_pack
from synthetic import CANDIDATES, write_synthetic_data


def test_a_pack_reads_back_as_the_native_records(tmp_path):
    data_dir = write_synthetic_data(tmp_path / "data")  # holds GSM8k alone
    write_pack(data_dir, tmp_path / "pack", CANDIDATES, ["Synth/responses"], max_response_chars=5,
               benchmarks=("GSM8k",))
    native = load_benchmark("GSM8k", data_dir, CANDIDATES)
    packed = load_benchmark("GSM8k", tmp_path / "pack", CANDIDATES)
    assert [r["prompt_id"] for r in packed] == [r["prompt_id"] for r in native]
    assert [r["scores"] for r in packed] == [r["scores"] for r in native]
    assert all(len(response) <= 5 for r in packed for response in r["responses"])
    # a subset of the candidates, in another order, re-indexes every k-list and the best candidate
    swapped = load_benchmark("GSM8k", tmp_path / "pack", CANDIDATES[::-1])
    assert [r["scores"] for r in swapped] == [r["scores"][::-1] for r in native]
    assert [r["best_model_idx"] for r in swapped] == [r["best_model_idx"] for r in
                                                     load_benchmark("GSM8k", data_dir, CANDIDATES[::-1])]
    train = load_train_set(tmp_path / "pack" / "train" / "Synth", CANDIDATES, "responses", split="train")
    assert [r["scores"] for r in train] == [r["scores"] for r in
                                           load_train_set(data_dir / "train" / "Synth", CANDIDATES, split="train")]
    assert json.loads((tmp_path / "pack" / "test" / "GSM8k" / "pack.json").read_text())["candidate_llms"] == CANDIDATES
