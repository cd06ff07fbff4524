"""Red flags fire for emergencies in both languages and not for near misses."""
from __future__ import annotations

import subprocess
import sys

import pytest

from knowledge_base.red_flags import check, infant_age_months, normalise, parse_number, triage, urgent_response

URGENT = [
    ("两个月的宝宝发烧三十八度二", "infant_fever"),
    ("宝宝42天 发烧了", "infant_fever"),
    ("新生儿发烧 体温38度", "infant_fever"),
    ("my 6 week old has a fever of 38.3", "infant_fever"),
    ("孩子嘴唇发紫", "blue_lips"),
    ("his lips are turning blue", "blue_lips"),
    ("娃喘不上气 胸口一吸一凹", "breathing"),
    ("she is struggling to breathe", "breathing"),
    ("宝宝抽搐了 口吐白沫", "seizure"),
    ("my son is having a seizure", "seizure"),
    ("孩子叫不醒 浑身软绵绵的", "unresponsive"),
    ("baby is limp and won't wake up", "unresponsive"),
    ("娃吃果冻噎住了", "choking"),
    ("my baby is choking on a grape", "choking"),
    ("孩子刚吞了一颗纽扣电池", "battery_magnet"),
    ("my toddler swallowed two magnets", "battery_magnet"),
    ("娃把奶奶的降压药吃了几片", "poisoning"),
    ("孩子喝了几口84消毒液", "poisoning"),
    ("she drank some bleach", "poisoning"),
    ("孩子被开水烫了一大片 起了大泡", "serious_burn"),
    ("boiling water spilled on her chest", "serious_burn"),
    ("孩子掉进水塘里了 刚捞上来", "near_drowning"),
    ("we found him face down in the pool", "near_drowning"),
    ("手割了个大口子血止不住", "heavy_bleeding"),
    ("the cut won't stop bleeding", "heavy_bleeding"),
    ("孩子从床上摔下来吐了好几次 老想睡", "head_injury"),
    ("he fell down the stairs and threw up twice", "head_injury"),
    ("吃了花生以后嘴唇肿了 喘得厉害", "severe_allergy"),
    ("her tongue is swelling after eating shrimp", "severe_allergy"),
    ("拉肚子 十个小时没尿了", "dehydration"),
    ("no wet diaper for 10 hours", "dehydration"),
    ("发烧身上起了紫色的斑点 按了不褪", "purple_rash"),
    ("宝宝吐绿水", "bad_vomit"),
    ("我真的不想活了", "self_harm"),
]

NOT_URGENT = [
    "怎么预防孩子溺水",
    "how to prevent choking",
    "2岁孩子发烧38度怎么办",
    "my 2 year old has a fever of 39",
    "孩子发烧三天了",
    "3个月以下宝宝发烧怎么办",
    "万一孩子噎住了怎么办",
    "what should i do if my baby chokes",
    "热性惊厥会不会烧坏脑子",
    "will a febrile seizure cause brain damage",
    "孩子以前抽过一次 还能打疫苗吗",
    "叫他名字没反应 是不是自闭症",
    "孩子不肯吃药怎么办",
    "高血压吃什么降压药",
    "纽扣电池要放在哪里",
    "腿抽筋是缺钙吗",
    "宝宝吐奶正常吗",
    "孩子摔了一下哭了一会就好了",
    "大便有点绿是怎么回事",
    "how to childproof for button batteries",
    "孩子被开水烫红了一小块",
    "宝宝鼻塞呼吸不畅",
    "累死了 孩子一直哭",
]


@pytest.mark.parametrize("text,flag", URGENT)
def test_emergencies_are_flagged(text, flag):
    found = check(text)
    assert found is not None and found.id == flag, f"{text!r} -> {found and found.id}"


@pytest.mark.parametrize("text", NOT_URGENT)
def test_near_misses_are_not_urgent(text):
    found = check(text)
    assert found is None, f"{text!r} wrongly flagged as {found.id}"


def test_urgent_response_in_chinese_says_120_and_the_first_step():
    resp = triage("宝宝吞了纽扣电池", "zh")
    assert resp["handoff"] is True and resp["call"] == "120"
    assert resp["message"].startswith("请马上拨打120")
    assert "纽扣电池" in resp["first_step"] and resp["first_step"] in resp["message"]


def test_urgent_response_in_english_says_911():
    resp = urgent_response(check("my baby is choking"), "en")
    assert resp["call"] == "911" and "911" in resp["message"] and "local emergency number" in resp["message"]
    assert "back blows" in resp["first_step"] and resp["handoff"] is True


def test_age_parsing():
    assert parse_number("四十二") == 42 and parse_number("十") == 10 and parse_number("两") == 2
    assert infant_age_months(*normalise("宝宝两个半月")) == 2.5
    assert infant_age_months(*normalise("孩子一岁两个月")) == 12.0  # years mean not an infant
    assert infant_age_months(*normalise("a 3 week old")) == pytest.approx(3 / 4.35)
    assert infant_age_months(*normalise("孩子发烧三天了")) is None


def test_import_is_light():
    """The Rasa NLU pipeline imports this module: no torch, faiss or jieba."""
    code = ("import sys, time; t = time.perf_counter(); import knowledge_base.red_flags as r; "
            "r.check('宝宝抽搐了'); dt = time.perf_counter() - t; "
            "heavy = [m for m in ('torch', 'faiss', 'jieba', 'sentence_transformers', 'numpy') if m in sys.modules]; "
            "print(heavy, dt)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    heavy, seconds = out.rsplit("]", 1)
    assert heavy + "]" == "[]"
    assert float(seconds) < 3.0  # generous: the machine is shared


@pytest.mark.parametrize("text", ["娃发烧耽误了打针 过了一个月了咋补", "咳嗽持续两个月了 发烧"])
def test_durations_are_not_ages(text):
    assert check(text) is None


def test_stiff_neck_with_fever():
    assert check("闺女脖子硬 发烧 还老吐").id == "brain_signs"
