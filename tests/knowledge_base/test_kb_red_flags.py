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


# Wider phrasings (typed and spoken, dialect) checked while writing the rules.
MORE_URGENT = [
    '宝宝憋得满脸通红喘不过来气',
    '娃呼吸好急 一直哼哼 吃不进奶',
    '孩子嘴巴周围发青',
    '宝宝突然浑身抽动 叫不醒',
    '孩子高烧抽风了',
    '俺孙子抽过去了 咋整',
    '娃翻白眼 手脚发硬',
    '孩子没呼吸了',
    '宝宝昏迷了',
    '孩子晕倒了叫不应',
    '小孩吃花生米卡住了 说不出话',
    '娃嗓子里卡了个硬币',
    '宝宝吃葡萄噎着了 脸都紫了',
    '孩子把电池吞下去了',
    '娃把磁铁吃了',
    '孩子误喝了洗洁精',
    '娃偷吃了一把药片',
    '孩子舔了老鼠药',
    '宝宝吃了干燥剂',
    '娃喝了白酒',
    '孩子煤气中毒了',
    '孩子被热油烫了脸',
    '孩子手摸插座被电了',
    '孩子掉河里了',
    '宝宝在澡盆里呛水了 现在不哭不动',
    '孩子鼻子出血止不住 流了好多',
    '孩子从楼梯上滚下来 一直吐',
    '宝宝摔了头 现在老想睡觉',
    '娃磕到后脑勺 吐了两回',
    '孩子吃了虾全身起疹子 喘不上气',
    '宝宝舌头肿了',
    '孩子拉了一天 一直没尿',
    '宝宝囟门鼓起来了',
    '孩子身上出了好多紫红色出血点 发着烧',
    '娃吐的是绿色的水',
    '宝宝二十天 发烧了',
    '宝宝才满月 体温三十八度',
    '出生十天的孩子发热',
    '我想跟孩子一起死',
    'my baby stopped breathing',
    'my son is turning blue',
    "she's having a fit",
    "he passed out and won't wake up",
    'baby swallowed a coin and is choking',
    "my daughter ate some of grandma's pills",
    'toddler drank dishwasher detergent',
    'my kid got an electric shock',
    'he fell out of the window',
    'she hit her head and keeps vomiting',
    'my baby has a bulging soft spot and fever',
    'his tongue is swollen after eating nuts',
    'no pee for 12 hours',
    "baby's lips look purple",
    'my 2 month old has a fever',
    'he is bleeding heavily',
]
MORE_NOT_URGENT = [
    '宝宝打嗝停不下来',
    '孩子发烧38度5 要吃药吗',
    '三岁孩子发烧三天了',
    '怎么预防孩子误吞电池',
    '纽扣电池为什么危险',
    '孩子吃饭老是噎着 怎么办',
    '宝宝喝奶呛着了 咳了几下就好了',
    '孩子晚上睡觉打呼噜',
    '宝宝手脚冰凉正常吗',
    '宝宝头上有个包 能吃能玩',
    '孩子摔了一跤膝盖破皮流了点血',
    '宝宝鼻塞喘气呼呼响',
    '孩子口水多',
    '宝宝眼屎多',
    '吃完药吐了要不要补',
    '宝宝睡觉老是一抽一抽的 是不是缺钙',
    '新生儿睡觉时手脚抖一下正常吗',
    '孩子吃了一块肥皂 一小口',
    '宝宝拉的便便有点绿',
    '两岁孩子不爱喝水 尿少',
    '孩子出牙发烧了',
    '宝宝湿疹破了流水',
    '宝宝脸上有胎记',
    '孩子被蚊子咬了肿了个大包',
    '宝宝嘴唇干裂',
    '孩子从小床上翻下来了 哭了一会就好',
    '打完疫苗腿肿了',
    '宝宝哭得脸通红',
    '孩子吐了一次 现在精神挺好',
    'how do i do cpr on a baby',
    'my baby hiccups a lot',
    'toddler bumped his head but is playing normally',
    'what to do if a child swallows a battery',
    'baby spit up a lot after feeding',
    'is it normal for newborns to breathe fast when sleeping',
    'my baby sneezes a lot',
    'can babies choke on spit up',
    'what temperature is a fever in a baby',
    'my toddler has a fever of 38.5 and is playing',
    'how to treat a small burn',
    '孩子烫伤多大面积要去医院',
    '异物卡喉急救方法',
    '一岁以下噎着了拍背咋拍',
    '热惊厥要不要打120',
    'what to do during a febrile seizure',
    'can a baby drown in the bath',
]


@pytest.mark.parametrize("text", MORE_URGENT)
def test_more_emergencies(text):
    assert check(text) is not None, text


@pytest.mark.parametrize("text", MORE_NOT_URGENT)
def test_more_near_misses(text):
    found = check(text)
    assert found is None, f"{text!r} wrongly flagged as {found.id}"


MORE_URGENT += [
    'my baby is gasping for air',
    'baby making grunting noises and breathing fast',
    "my toddler's lips went blue",
    'my son had a convulsion',
    'she is shaking all over and not responding',
    "my baby won't wake up",
    'baby is floppy and not feeding',
    "he's choking on a piece of apple",
    'something is stuck in her throat',
    'my kid swallowed a lithium battery',
    'my son swallowed a small magnet from a toy',
    'toddler swallowed some pills',
    'my daughter drank nail polish remover',
    'he ate rat poison',
    'my child got into the vitamins and ate a bunch',
    "she spilled boiling water on her arm and it's blistering",
    'toddler fell into the pool',
    'my son was underwater for a minute',
    "he cut his hand and it won't stop bleeding",
    'she fell off the changing table and is now very sleepy',
    'he hit his head and vomited',
    "my baby is having an allergic reaction and can't breathe",
    'her face is swollen after eating egg',
    'no wet diapers since this morning and very sleepy',
    "baby has a purple rash that doesn't fade",
    'my 7 week old has a temp of 100.8',
    'newborn with fever 38.1',
    'my 10 day old is hot to the touch',
    'i want to hurt my baby',
    "i'm thinking of ending my life",
    '孩子突然不会动了 叫也不应',
    '宝宝脸色发灰 呼吸很弱',
    '娃一直抽 嘴唇也紫了',
    '小孩把硬币吞进去了 喘不上气',
    '宝宝误食了洗衣凝珠',
    '孩子喝了爸爸的酒 现在昏睡',
    '孩子被热水壶烫伤了 胸口一大片',
    '娃被电线电了一下 现在没反应',
    '孩子在游泳池溺水了',
    '孩子鼻血流了半个小时还不停',
    '娃从桌子上摔下来 现在一直哭还吐了',
    '宝宝头着地 吐了好几次',
    '孩子吃了芒果嘴巴肿起来了喘气困难',
    '宝宝一天都没尿尿 嘴巴很干',
    '娃发烧身上出了很多出血点',
    '孩子吐咖啡色的东西',
    '宝宝肚子胀得硬邦邦的还一直吐',
    '宝宝两个月 烧到39度',
    '出生15天的宝宝体温37度9',
]
MORE_NOT_URGENT += [
    'how to tell if my baby has a fever',
    'what is a normal temperature for a baby',
    'baby breathing noisy when sleeping is that normal',
    'my baby turns red when crying',
    'is it normal for a baby to choke a little on milk',
    'toddler gags on new foods',
    'how to store batteries safely',
    'which medicines are dangerous for children',
    'my toddler bumped his head yesterday and is fine',
    'how do i treat a minor cut',
    'what are the signs of dehydration',
    'can my 6 month old have a fever after shots',
    'my baby shakes when startled',
    'baby has a little blood in stool',
    'my 5 month old has a fever of 38',
    "my baby's hands and feet are blue when cold",
    '宝宝哭起来脸憋得通红',
    '宝宝喝奶的时候呛了一下',
    '孩子吃饭时候噎了一下 喝口水就好了',
    '宝宝睡觉时候呼吸有点快',
    '孩子吃了一点点牙膏',
    '宝宝吃了一口沙子',
    '孩子磕破了嘴唇流了点血',
    '孩子玩水呛了一口 咳嗽几下就好了',
    '宝宝便便里有一点血丝',
    '孩子四个月发烧38度',
    '孩子脸上过敏起了几个小红点',
    '宝宝一天尿得比平时少',
    '宝宝手脚冰凉发紫 刚洗完澡',
    '孩子打完疫苗哭了好久',
]
