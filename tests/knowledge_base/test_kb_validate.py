"""The validator fails, naming file and field, for every rule; the real guidance validates."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from knowledge_base import GUIDANCE_DIR
from knowledge_base.topics import load_topics
from knowledge_base.validate import check_voice_answer, main, validate_directory

TODAY = dt.date(2026, 12, 4)
JAUNDICE = "neonatal_jaundice.yaml"


def edit(folder: Path, name: str, change) -> None:
    path = folder / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def problems(folder: Path, **kw):
    return [(p.file, p.field) for p in validate_directory(folder, TODAY, require_all_topics=False, **kw)]


def test_topics_file_lists_the_66_keys():
    topics = load_topics()
    assert len(topics) == 66
    assert "neonatal_jaundice" in topics and topics["neonatal_jaundice"].title_zh == "新生儿黄疸"


def test_fixtures_are_valid(fixture_dir):
    assert problems(fixture_dir) == []


def zh(data):
    return data["entries"][0]


def en(data):
    return data["entries"][1]


CASES = [
    ("missing field", lambda d: zh(d).pop("answer"), "entries[0].answer"),
    ("missing reviewed_by", lambda d: zh(d).pop("reviewed_by"), "entries[0].reviewed_by"),
    ("past review_due", lambda d: zh(d).update(review_due="2026-01-01"), "entries[0].review_due"),
    ("no sources", lambda d: zh(d).update(sources=[]), "entries[0].sources"),
    ("source without organisation", lambda d: zh(d)["sources"][0].pop("organisation"), "entries[0].sources[0].organisation"),
    ("source without document", lambda d: en(d)["sources"][0].update(document=""), "entries[1].sources[0].document"),
    ("zh voice too long", lambda d: zh(d).update(voice_answer="宝" * 61), "entries[0].voice_answer"),
    ("en voice too long", lambda d: en(d).update(voice_answer=" ".join(["word"] * 36)), "entries[1].voice_answer"),
    ("voice with a link", lambda d: en(d).update(voice_answer="See www.example.com for more"), "entries[1].voice_answer"),
    ("voice with percent", lambda d: zh(d).update(voice_answer="约百分之五十也就是50%的宝宝会黄"), "entries[0].voice_answer"),
    ("voice with book quotes", lambda d: zh(d).update(voice_answer="请看《指南》"), "entries[0].voice_answer"),
    ("voice with a range dash", lambda d: en(d).update(voice_answer="It fades in 1-2 weeks"), "entries[1].voice_answer"),
    ("Latin letters in zh voice", lambda d: zh(d).update(voice_answer="打完DTaP会低烧"), "entries[0].voice_answer"),
    ("too few zh questions", lambda d: zh(d).update(questions=zh(d)["questions"][:7]), "entries[0].questions"),
    ("too few en questions", lambda d: en(d).update(questions=en(d)["questions"][:4]), "entries[1].questions"),
    ("unknown topic", lambda d: d.update(topic="teleportation"), "topic"),
    ("bad urgency", lambda d: zh(d).update(urgency="whenever"), "entries[0].urgency"),
    ("bad language", lambda d: en(d).update(language="fr"), "entries[1].language"),
    ("bad date", lambda d: zh(d).update(reviewed_on="yesterday"), "entries[0].reviewed_on"),
]


@pytest.mark.parametrize("label,change,field", CASES, ids=[c[0] for c in CASES])
def test_each_rule_names_file_and_field(fixture_dir, label, change, field):
    edit(fixture_dir, JAUNDICE, change)
    assert (JAUNDICE, field) in problems(fixture_dir), label


def test_duplicate_ids_across_files(fixture_dir):
    edit(fixture_dir, "formula_feeding.yaml", lambda d: zh(d).update(id="fixture_jaundice.zh"))
    found = validate_directory(fixture_dir, TODAY, require_all_topics=False)
    dupes = [p for p in found if "duplicate id" in p.message]
    assert len(dupes) == 1 and dupes[0].field == "entries[0].id"


def test_require_all_topics_reports_missing_languages(fixture_dir):
    edit(fixture_dir, JAUNDICE, lambda d: d["entries"].pop(1))
    found = {(p.file, p.message) for p in validate_directory(fixture_dir, TODAY, require_all_topics=True)}
    assert ("neonatal_jaundice.yaml", "topic 'neonatal_jaundice' has no en entry") in found
    assert ("breastfeeding.yaml", "topic 'breastfeeding' has no zh entry") in found
    assert not any(f == "formula_feeding.yaml" for f, _ in found)


def test_voice_rules_accept_plain_speech():
    assert check_voice_answer("多数黄疸两周左右会退，黄得快要尽快看医生。", "zh") == []
    assert check_voice_answer("Most jaundice fades within two weeks. Call one two zero if the baby is limp.", "en") == []
    assert check_voice_answer("宝宝 " * 30, "zh") == []  # 60 characters once whitespace is dropped


def test_cli_exit_codes_and_messages(fixture_dir, capsys):
    args = ["--dir", str(fixture_dir), "--today", "2026-12-04", "--no-require-all-topics"]
    assert main(args) == 0
    edit(fixture_dir, JAUNDICE, lambda d: zh(d).update(review_due="2026-06-01"))
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "neonatal_jaundice.yaml: entries[0].review_due: review is overdue" in err


def test_the_real_guidance_directory_validates():
    found = validate_directory(GUIDANCE_DIR, dt.date.today(), require_all_topics=True)
    assert found == [], "\n".join(map(str, found[:20]))
