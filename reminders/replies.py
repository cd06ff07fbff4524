"""Classify inbound replies (chat or SMS) to reminders. Pure functions."""
from __future__ import annotations

import enum
import re
import unicodedata


class ReplyIntent(str, enum.Enum):
    ACK = "ack"
    DOSE_GIVEN = "dose_given"        # needs a confirmation question before recording
    OPT_OUT = "opt_out"
    CONFIRM_YES = "confirm_yes"
    CONFIRM_NO = "confirm_no"
    NOT_GIVEN = "not_given"          # "还没打" - explicitly not yet
    UNKNOWN = "unknown"


_OPT_OUT_TOKENS = {"td", "t", "stop", "unsubscribe", "stopall", "cancel", "quit", "end", "n退订"}
_OPT_OUT_ZH = ("退订", "取消提醒", "取消订阅", "不要再发", "别再发", "停止提醒", "退定")
_OPT_OUT_EN = ("unsubscribe", "stop reminders", "stop sending")

_NOT_GIVEN_ZH = ("没打", "未打", "还没接种", "没有打", "未接种", "没接种")
_NOT_GIVEN_EN = ("not yet", "haven't", "have not", "didn't", "did not")
_DOSE_ZH = ("已打", "打了", "打过", "已接种", "接种了", "打完", "已经打", "接种过", "已种")
_DOSE_EN = ("done shot", "shot done", "got the shot", "had the shot", "vaccinated", "got vaccinated",
            "shot given", "dose given", "got his shot", "got her shot", "got shot")
_ACK_ZH = ("收到", "好的", "知道了", "知道啦", "明白", "好滴", "嗯嗯", "谢谢", "ok了")
_ACK_TOKENS = {"ok", "okay", "k", "done", "got it", "thanks", "thank you", "noted", "received",
               "好", "嗯", "好的", "收到", "行", "👍", "roger"}
_YES = {"是", "是的", "对", "对的", "确认", "yes", "y", "yep", "yeah", "confirm", "correct", "1"}
_NO = {"否", "不是", "不对", "no", "n", "nope", "不", "2"}


def _norm(text: str) -> str:
    s = unicodedata.normalize("NFKC", text or "").strip().lower()
    s = re.sub(r"[\s。.!！,，~～、?？]+", " ", s).strip()
    return s


def classify_reply(text: str) -> ReplyIntent:
    """Classify a caregiver's reply.

    Order of precedence: opt-out (safety first), explicit "not yet",
    dose given, yes/no confirmation, acknowledgement.

    >>> classify_reply("已经打了乙肝第二针").value
    'dose_given'
    >>> classify_reply("TD").value
    'opt_out'
    """
    s = _norm(text)
    if not s:
        return ReplyIntent.UNKNOWN
    tokens = set(s.split())
    compact = s.replace(" ", "")
    if tokens & _OPT_OUT_TOKENS or any(w in compact for w in _OPT_OUT_ZH) or any(w in s for w in _OPT_OUT_EN):
        return ReplyIntent.OPT_OUT
    if any(w in compact for w in _NOT_GIVEN_ZH) or any(w in s for w in _NOT_GIVEN_EN):
        return ReplyIntent.NOT_GIVEN
    if any(w in compact for w in _DOSE_ZH) or any(w in s for w in _DOSE_EN):
        return ReplyIntent.DOSE_GIVEN
    if s in _YES:
        return ReplyIntent.CONFIRM_YES
    if s in _NO:
        return ReplyIntent.CONFIRM_NO
    if s in _ACK_TOKENS or any(w in compact for w in _ACK_ZH) or compact in {"ok", "okay", "done"}:
        return ReplyIntent.ACK
    return ReplyIntent.UNKNOWN
