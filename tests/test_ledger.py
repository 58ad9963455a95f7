from autoagent.ledger import Experiment, Ledger


def test_the_last_record_of_an_experiment_wins_and_the_tsv_follows(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.save(Experiment(0, "running", commit="a" * 40, description="baseline"))
    assert ledger.tsv.read_text().splitlines()[1:] == []  # a running experiment has no row yet
    ledger.save(Experiment(0, "baseline", commit="a" * 40, description="baseline", avg_score=0.5,
                           passed=1, total=2, task_scores={"b": 0.0, "a": 1.0},
                           cost_usd={"task": 0.25, "meta": 0.0}))  # fmt: skip
    ledger.save(Experiment(1, "crash", commit="b" * 40, description="tab\tand\nnewline"))
    rows = [line.split("\t") for line in ledger.tsv.read_text().splitlines()]
    assert rows[1] == ["aaaaaaa", "0.5000", "1/2", "a=1,b=0", "0.2500", "baseline", "baseline", "", ""]
    assert rows[2][5:] == ["crash", "tab and newline", "", ""]
    assert [e.status for e in ledger.experiments()] == ["baseline", "crash"]
    assert ledger.best().id == 0 and ledger.next_id() == 2


def test_a_line_cut_short_by_a_kill_is_skipped(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.save(Experiment(0, "baseline"))
    with open(ledger.runs, "a") as file:
        file.write('{"kind": "experiment", "id": 1, "stat')  # the process died mid-write
    assert [e.id for e in ledger.experiments()] == [0]
    ledger.note("meta_failure", reason="timeout")
    assert ledger.events("meta_failure")[0]["reason"] == "timeout"


def test_a_composition_round_trips_and_an_old_ledger_without_the_field_loads(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.runs.parent.mkdir(parents=True)  # a record written before compositions existed:
    ledger.runs.write_text('{"kind": "experiment", "id": 0, "status": "baseline", "passed": 1, "total": 2}\n')
    ledger.save(Experiment(1, "superseded", parent_id=0, description="retry", reason="composed as 2"))
    ledger.save(Experiment(2, "keep", parent_id=0, composed_from=1, description="retry"))
    assert [(e.status, e.composed_from) for e in ledger.experiments()] == [
        ("baseline", None), ("superseded", None), ("keep", 1)]  # fmt: skip
    assert [e.final for e in ledger.experiments()] == [True, True, True]
    assert [row.split("\t")[5] for row in ledger.tsv.read_text().splitlines()[1:]] == ["baseline", "superseded", "keep"]
