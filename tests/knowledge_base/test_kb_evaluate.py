"""Evaluation: TSV parsing, metric definitions, and the CLI's one JSON object."""
from __future__ import annotations

import json

import pytest

from knowledge_base.evaluate import Question, main, parse_questions, score_results
from tests.knowledge_base.conftest import FIXTURES


def test_parse_skips_comments_and_checks_the_header():
    rows = parse_questions("# comment\nquestion\tlanguage\ttopic\n宝宝发烧\tzh\tfever_management\n# x\n")
    assert rows == [Question("宝宝发烧", "zh", "fever_management", 3)]
    with pytest.raises(ValueError, match="header"):
        parse_questions("q\tl\tt\n")
    with pytest.raises(ValueError, match=":3:"):
        parse_questions("question\tlanguage\ttopic\n\nonly two\tzh\n")


def hit(topic):
    return {"topic": topic}


def test_metric_definitions():
    qs = [Question("a", "zh", "t1", 1), Question("b", "zh", "t2", 2), Question("c", "zh", "t3", 3),
          Question("d", "zh", "URGENT", 4), Question("e", "zh", "OUT_OF_SCOPE", 5), Question("f", "en", "OUT_OF_SCOPE", 6)]
    results = [
        {"decision": "answer", "hits": [hit("t1")]},  # top1 right
        {"decision": "clarify", "hits": [hit("x"), hit("t2")]},  # top1 wrong, within 3
        {"decision": "out_of_scope", "hits": [hit("t3")]},  # right topic but declined: not top1
        {"decision": "urgent", "hits": []},
        {"decision": "urgent", "hits": []},  # a false urgent
        {"decision": "out_of_scope", "hits": [hit("t1")]},
    ]
    m = score_results(qs, results, [1, 2, 3, 4, 5, 100])
    assert m["n"] == 6
    assert m["top1_accuracy"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["recall_at_3"] == 1.0
    assert m["urgent_recall"] == 1.0
    assert m["false_urgent_rate"] == pytest.approx(1 / 5, abs=1e-4)
    assert m["out_of_scope_accuracy"] == 0.5
    assert m["p50_ms"] == 3.5 and m["p95_ms"] > 50


def test_cli_prints_one_json_object(tmp_path, capsys, embedder):
    tsv = tmp_path / "q.tsv"
    tsv.write_text("question\tlanguage\ttopic\n黄胆咋还不退\tzh\tneonatal_jaundice\n孩子吞了磁铁\tzh\tURGENT\n"
                   "今天股票涨了没\tzh\tOUT_OF_SCOPE\n", encoding="utf-8")
    assert main(["--questions", str(tsv), "--json", "--dir", str(FIXTURES), "--cache-dir", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1  # one JSON object, nothing else on stdout
    metrics = json.loads(out[0])
    assert set(metrics) == {"n", "top1_accuracy", "recall_at_3", "urgent_recall", "false_urgent_rate",
                            "out_of_scope_accuracy", "p50_ms", "p95_ms"}
    assert metrics["n"] == 3 and metrics["urgent_recall"] == 1.0 and metrics["top1_accuracy"] == 1.0
