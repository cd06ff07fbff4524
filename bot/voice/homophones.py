"""Speech-recognition homophone repair (lives in bot.nlu.asr_repair, which the
NLU pipeline also uses; re-exported here for the voice connectors)."""
from bot.nlu.asr_repair import DOMAIN_TERMS, repair_homophones, syllables  # noqa: F401
