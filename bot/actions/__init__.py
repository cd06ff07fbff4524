"""Custom actions, run by the action server: `rasa run actions --actions bot.actions`.

rasa-sdk imports every submodule of this package and registers its Action classes.
"""
